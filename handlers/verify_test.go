package handlers

import (
	"database/sql"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"certdesk/internal/validation"
)

var verifyLinkRe = regexp.MustCompile(`/verify/(mailbox|domain)/([a-z2-7]+)`)

// startMailbox starts a mailbox validation and returns the link's path.
func (e *valEnv) startMailbox(email string) string {
	e.t.Helper()
	acct, err := e.db.AccountByName(e.t.Context(), "Acme")
	if err != nil {
		acct, _ = e.db.CreateAccount(e.t.Context(), "Acme")
	}
	if err := e.db.Tx(e.t.Context(), func(tx *sql.Tx) error {
		return e.svc.StartMailboxForOrder(e.t.Context(), tx, acct.ID, email, 0, "en")
	}); err != nil {
		e.t.Fatal(err)
	}
	m, err := e.db.LatestOutboxTo(e.t.Context(), email, validation.KindMailboxConfirm)
	if err != nil {
		e.t.Fatal(err)
	}
	g := verifyLinkRe.FindString(m.Text)
	if g == "" {
		e.t.Fatalf("no link in %q", m.Text)
	}
	return g
}

// The mailbox link (public, no sign-in): GET shows a confirm button and
// changes nothing; POST confirms; a second use and a 25-hour-old link get
// a clear page with 410; an unknown link 404.
func TestVerifyMailboxLink(t *testing.T) {
	e := newValEnv(t)
	link := e.startMailbox("ann@example.org")
	c := e.client()
	r := c.get(link)
	if r.status != http.StatusOK {
		t.Fatalf("GET: %d", r.status)
	}
	mustContain(t, r.body, "Confirm your email address", "ann@example.org", `id="verify-confirm"`)
	r = c.post(link, link, nil)
	if r.status != http.StatusOK {
		t.Fatalf("POST: %d", r.status)
	}
	mustContain(t, r.body, "ann@example.org is confirmed")
	r = c.post("/signin", link, nil)
	if r.status != http.StatusGone {
		t.Fatalf("second use: %d", r.status)
	}
	mustContain(t, r.body, "Link already used", "has already been used")
	if r := c.get(link); r.status != http.StatusGone {
		t.Fatalf("GET after use: %d", r.status)
	}

	old := e.startMailbox("bob@example.org")
	e.clock.Advance(25 * time.Hour)
	r = c.get(old)
	if r.status != http.StatusGone {
		t.Fatalf("25-hour-old link: %d", r.status)
	}
	mustContain(t, r.body, "Link expired", "valid for 24 hours")
	r = c.do("GET", old, nil, map[string]string{"Accept-Language": "nl"})
	mustContain(t, r.body, "Link verlopen", "24 uur")

	if r := c.get("/verify/mailbox/" + strings.Repeat("a", 32)); r.status != http.StatusNotFound {
		t.Fatalf("unknown link: %d", r.status)
	}
	mustContain(t, c.get("/verify/domain/nope").body, "Link not valid")
}
