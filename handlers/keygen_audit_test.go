package handlers

// An audit of the KeyGen link and its exchange as a hostile or clumsy
// recipient would use them (issue 6). Each test here failed before the fix
// it comes with.

import (
	"net/http"
	"strings"
	"testing"
)

// kgaRecipientState is the recipient's status and whether a CSR is stored.
func (k *kgTest) kgaRecipientState() (string, bool) {
	k.t.Helper()
	var st, csr string
	if err := k.db.QueryRow(`SELECT status, csr_pem FROM recipients WHERE id = ?`, k.order.Recipients[0].ID).Scan(&st, &csr); err != nil {
		k.t.Fatal(err)
	}
	return st, csr != ""
}

func (k *kgTest) kgaCertificateCount() int {
	k.t.Helper()
	var n int
	if err := k.db.QueryRow(`SELECT COUNT(*) FROM certificates`).Scan(&n); err != nil {
		k.t.Fatal(err)
	}
	return n
}

// kgaGetLang fetches path with an Accept-Language header.
func (c *client) kgaGetLang(path, lang string) resp {
	c.e.t.Helper()
	return c.do("GET", path, nil, map[string]string{"Accept-Language": lang})
}

// The organization's validation (825 days) lapses while the recipient's
// 30-day link is still valid. Before: the page offered Generate, the
// exchange stored the CSR and answered 500 ("Reload the page"), the
// reloaded link said "no longer waits for a key", and the recipient stayed
// 'ready' with that CSR, so the scheduler would issue, and charge, a
// certificate for a key the page had already dropped once the organization
// was validated again. Now the page and the exchange say the organization
// must be validated again first (409), nothing is stored, and the same
// link works once it is.
func TestKeyGenAuditOrganizationExpired(t *testing.T) {
	k := newKGTest(t)
	tok := k.link()
	c := k.client()
	csrf := k.open(c, tok)
	setOrgExpiry := func(days int) {
		t.Helper()
		if _, err := k.db.Exec(`UPDATE organizations SET expires_at = ?`, fmtT(k.clock.Now().AddDate(0, 0, days))); err != nil {
			t.Fatal(err)
		}
	}
	setOrgExpiry(-1)

	r := c.get("/keygen/" + tok)
	if r.status != http.StatusConflict || !strings.Contains(r.body, "validation of the organization has expired") ||
		strings.Contains(r.body, `id="kg-generate"`) {
		t.Errorf("page with the organization's validation expired: %d %q", r.status, kgaProblem(r.body))
	}
	if r := c.kgaGetLang("/keygen/"+tok, "nl"); r.status != http.StatusConflict || !strings.Contains(r.body, "validatie van de organisatie is verlopen") {
		t.Errorf("Dutch page: %d %q", r.status, kgaProblem(r.body))
	}
	st, a := k.exchange(c, k.sameOriginHeaders(csrf), map[string]string{"token": tok, "csr": kgCSR(t, nil)})
	if st != http.StatusConflict || len(a.Errors) != 1 || !strings.Contains(a.Errors[0].Message, "works again") {
		t.Errorf("exchange with the organization's validation expired: %d %+v", st, a)
	}
	if status, hasCSR := k.kgaRecipientState(); status != "awaiting_key_generation" || hasCSR {
		t.Errorf("after the refused exchange the recipient is %s (CSR stored: %v); want awaiting_key_generation without a CSR", status, hasCSR)
	}
	if n := k.kgaCertificateCount(); n != 0 {
		t.Errorf("%d certificates", n)
	}
	if strings.Contains(k.logs.String(), "level=ERROR") {
		t.Errorf("an internal error was logged:\n%s", k.logs.String())
	}

	// Validated again: the same link works.
	setOrgExpiry(800)
	if r := c.get("/keygen/" + tok); r.status != http.StatusOK {
		t.Errorf("page after the organization was validated again: %d", r.status)
	}
	if st, a := k.exchange(c, k.sameOriginHeaders(csrf), map[string]string{"token": tok, "csr": kgCSR(t, nil)}); st != http.StatusOK || a.Certificate == "" {
		t.Errorf("exchange after the organization was validated again: %d %+v", st, a)
	}
}

// kgaProblem is the KeyGen page's heading and first alert, for messages.
func kgaProblem(body string) string {
	if i := strings.Index(body, "<h1"); i >= 0 {
		body = body[i:]
	}
	if i := strings.Index(body, "</div>"); i >= 0 {
		body = body[:i]
	}
	return body
}

// Refusals made before the exchange's own handler runs (the CSRF check,
// the 2 MB body limit) were answered in English whatever the visitor's
// language, and the page shows the answer's message as it is. A realistic
// way to get there: the recipient opens the link, then signs in to the
// portal in another tab of the same browser (a requestor ordering for
// themselves), which gives the session a new CSRF token; Generate then
// posts the page's old one.
func TestKeyGenAuditRefusalsBeforeTheHandlerAreTranslated(t *testing.T) {
	k := newKGTest(t)
	tok := k.link()
	c := k.client()
	csrf := k.open(c, tok)
	c.signIn("req@example.com", k.pw)
	nl := k.sameOriginHeaders(csrf)
	nl["Accept-Language"] = "nl-NL,nl;q=0.9"
	body := map[string]string{"token": tok, "csr": kgCSR(t, nil)}
	st, a := k.exchange(c, nl, body)
	if st != http.StatusForbidden || len(a.Errors) != 1 || a.Errors[0].Message != "Dit formulier is verlopen. Ga terug, laad de pagina opnieuw en probeer het nog eens." {
		t.Errorf("stale CSRF token, Dutch visitor: %d %+v", st, a)
	}
	en := k.sameOriginHeaders(csrf)
	if st, a := k.exchange(c, en, body); st != http.StatusForbidden || len(a.Errors) != 1 || !strings.Contains(a.Errors[0].Message, "reload the page") {
		t.Errorf("stale CSRF token, English visitor: %d %+v", st, a)
	}

	// Over the server's 2 MB body limit (the exchange's own limit is 64 KiB).
	csrf = k.open(c, tok)
	nl = k.sameOriginHeaders(csrf)
	nl["Accept-Language"] = "nl"
	st, a = k.exchange(c, nl, map[string]string{"token": tok, "csr": strings.Repeat("A", 3<<20)})
	if st != http.StatusRequestEntityTooLarge || len(a.Errors) != 1 || a.Errors[0].Message != "Wat u verstuurde is groter dan wij accepteren." {
		t.Errorf("3 MB body, Dutch visitor: %d %+v", st, a)
	}
	// Nothing was issued, the link still works.
	if st, a := k.exchange(c, k.sameOriginHeaders(csrf), body); st != http.StatusOK || a.Certificate == "" {
		t.Errorf("exchange after the refusals: %d %+v", st, a)
	}
}
