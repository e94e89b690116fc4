package validation_test

import (
	"context"
	"database/sql"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"certdesk/internal/mail"
	"certdesk/internal/portal"
	"certdesk/internal/validation"
	"certdesk/store"
)

// zone is a tiny DNS server on 127.0.0.1 (UDP) answering from records the
// test sets: records of the asked type at the name, else a CNAME at the
// name (the resolver follows it), else NXDOMAIN.
type zone struct {
	Addr string
	mu   sync.Mutex
	rrs  map[string][]dns.RR
}

func startZone(t *testing.T, records ...string) *zone {
	t.Helper()
	z := &zone{rrs: map[string][]dns.RR{}}
	z.add(t, records...)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.Addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: z}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("DNS test server did not start")
	}
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z
}

func (z *zone) add(t *testing.T, records ...string) {
	t.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad record %q: %v", s, err)
		}
		n := dns.CanonicalName(rr.Header().Name)
		z.rrs[n] = append(z.rrs[n], rr)
	}
}

// replace drops the records at name and adds records.
func (z *zone) replace(t *testing.T, name string, records ...string) {
	z.mu.Lock()
	delete(z.rrs, dns.CanonicalName(name))
	z.mu.Unlock()
	z.add(t, records...)
}

func (z *zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		z.mu.Lock()
		rrs, ok := z.rrs[dns.CanonicalName(q.Name)]
		z.mu.Unlock()
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		var alias []dns.RR
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			} else if rr.Header().Rrtype == dns.TypeCNAME {
				alias = append(alias, rr)
			}
		}
		if len(m.Answer) == 0 {
			m.Answer = alias
		}
	}
	_ = w.WriteMsg(m)
}

type txT = *sql.Tx

type fakeAdvancer struct {
	mu    sync.Mutex
	calls []int64
}

func (f *fakeAdvancer) Advance(_ context.Context, accountID int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, accountID)
	return nil
}

func (f *fakeAdvancer) count(acct int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, a := range f.calls {
		if a == acct {
			n++
		}
	}
	return n
}

// fx is a validation service on a real SQLite file, a fixed clock and a
// DNS server on 127.0.0.1.
type fx struct {
	t     *testing.T
	ctx   context.Context
	db    *store.DB
	clock *portal.FixedClock
	zone  *zone
	svc   *validation.Service
	adv   *fakeAdvancer
	acct  portal.Account
	other portal.Account
	admin validation.Actor
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newFx(t *testing.T, mod func(*validation.Config)) *fx {
	t.Helper()
	ctx := context.Background()
	clock := portal.NewFixedClock(t0)
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "v.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	z := startZone(t)
	cfg := validation.Config{Resolver: z.Addr, DNSTimeout: 2 * time.Second, HTTPTimeout: 3 * time.Second,
		CAAIdentities: []string{"certdesk.test"}}
	if mod != nil {
		mod(&cfg)
	}
	checker, err := validation.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fx{t: t, ctx: ctx, db: db, clock: clock, zone: z, adv: &fakeAdvancer{}}
	f.svc = &validation.Service{Store: db, Checker: checker, Limiter: validation.NewLimiter(0, 0, 0), Clock: clock,
		Compose: compose, Advancer: f.adv, BaseURL: "https://portal.test", CallbackPhone: "+31 20 555 0199"}
	if f.acct, err = db.CreateAccount(ctx, "Acme"); err != nil {
		t.Fatal(err)
	}
	if f.other, err = db.CreateAccount(ctx, "Other"); err != nil {
		t.Fatal(err)
	}
	f.admin = validation.Actor{UserID: 0, Email: "admin@acme.test", IP: "127.0.0.1"}
	return f
}

func compose(lang, subject string, body []string, data map[string]any, links []validation.MailLink) (portal.Email, error) {
	ml := make([]mail.Link, len(links))
	for i, l := range links {
		ml[i] = mail.Link{Label: l.Label, URL: l.URL}
	}
	return mail.Compose(lang, subject, body, data, ml)
}

func goodOrg() validation.OrgInput {
	return validation.OrgInput{LegalName: "Acme B.V.", Address: "Damrak 1", City: "Amsterdam", PostalCode: "1012 LG",
		Country: "nl", Phone: "+31 20 555 0100",
		OrgContact:  portal.Contact{Name: "Olga Org", Email: "olga@acme.test"},
		TechContact: portal.Contact{Name: "Tom Tech", Email: "tom@acme.test", Phone: "+31 6 1234 5678"}}
}

// org adds a draft organization to the fixture's account.
func (f *fx) org() portal.Organization {
	f.t.Helper()
	o, err := f.svc.CreateOrg(f.ctx, f.admin, f.acct.ID, goodOrg(), "en")
	if err != nil {
		f.t.Fatal(err)
	}
	return o
}

// pendingOrg adds and submits an organization.
func (f *fx) pendingOrg() portal.Organization {
	f.t.Helper()
	o := f.org()
	if err := f.svc.SubmitOrg(f.ctx, f.admin, f.acct.ID, o.ID, "en"); err != nil {
		f.t.Fatal(err)
	}
	return o
}

func (f *fx) getOrg(id int64) portal.Organization {
	f.t.Helper()
	o, _, err := f.svc.Org(f.ctx, f.acct.ID, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return o
}

type sent struct{ To, Kind, Subject, Text string }

// mails returns the outbox, oldest first.
func (f *fx) mails() []sent {
	f.t.Helper()
	rows, err := f.db.QueryContext(f.ctx, `SELECT to_addr, kind, subject, text_body FROM outbox ORDER BY id`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []sent
	for rows.Next() {
		var m sent
		if err := rows.Scan(&m.To, &m.Kind, &m.Subject, &m.Text); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (f *fx) mailsOf(kind string) []sent {
	var out []sent
	for _, m := range f.mails() {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

var linkRe = regexp.MustCompile(`https://portal\.test(/verify/[a-z]+/)([a-z2-7]+)`)

// token pulls the link token out of an email.
func token(t *testing.T, m sent) string {
	t.Helper()
	g := linkRe.FindStringSubmatch(m.Text)
	if g == nil {
		t.Fatalf("no link in email to %s:\n%s", m.To, m.Text)
	}
	return g[2]
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := portal.ErrorCode(err); got != code {
		t.Fatalf("error code %q (%v), want %q", got, err, code)
	}
}

func (f *fx) auditActions() []string {
	f.t.Helper()
	es, err := f.db.ListAudit(f.ctx, 1000, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Action+" "+e.Detail)
	}
	return out
}

func hasAudit(actions []string, prefix string) bool {
	for _, a := range actions {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}
