package validation_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"certdesk/internal/portal"
	"certdesk/internal/validation"
)

// validOrg adds an organization that is validated.
func (f *fx) validOrg() portal.Organization {
	f.t.Helper()
	o := f.pendingOrg()
	if err := f.svc.CallCompleted(f.ctx, validation.Actor{Email: "agent@certdesk.test"}, o.ID, ""); err != nil {
		f.t.Fatal(err)
	}
	return f.getOrg(o.ID)
}

func (f *fx) domain(id int64) validation.DomainRecord {
	f.t.Helper()
	d, err := f.svc.Domain(f.ctx, f.acct.ID, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// DNS TXT through the service against the test DNS server: a first check
// shows what it found and what it expected; after the record is published
// at _dnsauth the check validates the domain for 398 days.
func TestDomainDNSTXT(t *testing.T) {
	f := newFx(t, nil)
	o := f.validOrg()
	f.zone.add(t, `acme.test. 60 IN TXT "v=spf1 -all"`)
	d, err := f.svc.AddDomain(f.ctx, f.admin, f.acct.ID, o.ID, "ACME.test.", portal.DCVDNSTXT, "en")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "acme.test" || len(d.RandomValue) < 26 || !d.ValueExpiresAt.Equal(t0.Add(30*24*time.Hour)) {
		t.Fatalf("domain: %+v", d.Domain)
	}
	in := f.svc.InstructionsFor(d)
	if in.AltName != "_dnsauth.acme.test" || in.Value != d.RandomValue {
		t.Fatalf("instructions: %+v", in)
	}
	res, err := f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID)
	if err != nil || res.OK {
		t.Fatalf("before publishing: %+v %v", res, err)
	}
	if len(res.Found) != 1 || !strings.Contains(res.Found[0], "v=spf1 -all") || !strings.Contains(res.Expected, d.RandomValue) {
		t.Fatalf("result does not say what was found and expected: %+v", res)
	}
	if last := f.domain(d.ID).LastCheck; last.OK || last.Detail == "" || len(last.Found) != 1 {
		t.Fatalf("last check not stored: %+v", last)
	}
	f.zone.add(t, fmt.Sprintf(`_dnsauth.acme.test. 60 IN TXT "%s"`, d.RandomValue))
	f.clock.Advance(time.Hour)
	res, err = f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID)
	if err != nil || !res.OK {
		t.Fatalf("after publishing: %+v %v", res, err)
	}
	got := f.domain(d.ID)
	at := t0.Add(time.Hour)
	if got.Status != portal.DomainValidated || !got.ValidatedAt.Equal(at) || !got.ExpiresAt.Equal(at.Add(398*24*time.Hour)) ||
		got.ValidationMethod != validation.MethodDNSTXT {
		t.Fatalf("validated: %+v", got)
	}
	if f.adv.count(f.acct.ID) != 2 { // org validated, domain validated
		t.Errorf("advance calls: %v", f.adv.calls)
	}
	// subdomains are covered; a covered subdomain needs no domain of its own
	if ok, _ := f.svc.DomainCovered(f.ctx, f.acct.ID, o.ID, "ann@mail.acme.test"); !ok {
		t.Error("mail.acme.test not covered by acme.test")
	}
	if ok, _ := f.svc.DomainCovered(f.ctx, f.acct.ID, o.ID, "ann@notacme.test"); ok {
		t.Error("notacme.test covered by acme.test")
	}
	_, err = f.svc.AddDomain(f.ctx, f.admin, f.acct.ID, o.ID, "mail.acme.test", portal.DCVDNSTXT, "en")
	if fe := portal.AsFieldErrors(err); len(fe) != 1 || fe[0].Key != "val.err.domain_covered" {
		t.Fatalf("covered subdomain: %v", err)
	}
	_, err = f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID)
	wantCode(t, err, portal.EConflict) // nothing to check while current

	// 398-day reuse (SBR 4.2.1), then expired
	f.clock.Set(at.Add(398*24*time.Hour - time.Second))
	if !f.domain(d.ID).Current(f.clock.Now()) {
		t.Fatal("not current just before 398 days")
	}
	f.clock.Set(at.Add(398 * 24 * time.Hour))
	if st := f.domain(d.ID).State(f.clock.Now()); st != portal.DomainExpired {
		t.Fatalf("after 398 days: %s", st)
	}
	if ok, _ := f.svc.DomainCovered(f.ctx, f.acct.ID, o.ID, "ann@acme.test"); ok {
		t.Error("an expired domain still covers addresses")
	}
	// revalidation needs a fresh value: the old one is past its 30 days
	_, err = f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID)
	wantCode(t, err, portal.EConflict)
	if err := f.svc.ChangeMethod(f.ctx, f.admin, f.acct.ID, d.ID, portal.DCVDNSTXT, "en"); err != nil {
		t.Fatal(err)
	}
	if nd := f.domain(d.ID); nd.RandomValue == d.RandomValue || nd.Status != portal.DomainPending {
		t.Fatalf("new value: %+v", nd.Domain)
	}
}

// The random value of DNS and HTTP methods lasts 30 days.
func TestDomainValueExpires30Days(t *testing.T) {
	f := newFx(t, nil)
	o := f.validOrg()
	d, err := f.svc.AddDomain(f.ctx, f.admin, f.acct.ID, o.ID, "late.test", portal.DCVDNSTXT, "en")
	if err != nil {
		t.Fatal(err)
	}
	f.zone.add(t, fmt.Sprintf(`late.test. 60 IN TXT "%s"`, d.RandomValue))
	f.clock.Set(t0.Add(30 * 24 * time.Hour))
	_, err = f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID)
	wantCode(t, err, portal.EConflict)
	if pe := portal.AsFieldErrors(err)[0]; pe.Key != "val.domain.value_expired" {
		t.Fatalf("key %s", pe.Key)
	}
	if f.domain(d.ID).Status != portal.DomainPending {
		t.Fatal("validated with an expired value")
	}
}

// DNS CNAME: <value>.<domain> CNAME <the portal's target>.
func TestDomainDNSCNAME(t *testing.T) {
	f := newFx(t, func(c *validation.Config) { c.CNAMETarget = "dcv.ca.test" })
	o := f.validOrg()
	d, err := f.svc.AddDomain(f.ctx, f.admin, f.acct.ID, o.ID, "cname.test", portal.DCVDNSCNAME, "en")
	if err != nil {
		t.Fatal(err)
	}
	in := f.svc.InstructionsFor(d)
	if in.Name != d.RandomValue+".cname.test" || in.Target != "dcv.ca.test" {
		t.Fatalf("instructions: %+v", in)
	}
	f.zone.add(t, in.Name+`. 60 IN CNAME elsewhere.test.`)
	res, err := f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID)
	if err != nil || res.OK || !strings.Contains(res.Detail, "elsewhere.test") {
		t.Fatalf("wrong target: %+v %v", res, err)
	}
	f.zone.replace(t, in.Name, in.Name+`. 60 IN CNAME dcv.ca.test.`)
	res, err = f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID)
	if err != nil || !res.OK {
		t.Fatalf("right target: %+v %v", res, err)
	}
	if got := f.domain(d.ID); got.Status != portal.DomainValidated || got.ValidationMethod != validation.MethodDNSCNAME {
		t.Fatalf("validated: %+v", got)
	}
}

// startSite serves the validation file on 127.0.0.1 and publishes name ->
// 127.0.0.1 in the test DNS. It returns the port.
func startSite(t *testing.T, f *fx, name string, h http.Handler) int {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.zone.add(t, name+". 60 IN A 127.0.0.1")
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(p)
	return port
}

// HTTP: the file on a loopback test server, allowed by test configuration
// (AllowLoopback) and reached on the configured port.
func TestDomainHTTP(t *testing.T) {
	var body string
	mux := http.NewServeMux()
	mux.HandleFunc(validation.HTTPPath, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) })
	f := newFx(t, nil)
	// the test configuration: loopback allowed, the test server's port
	port := startSite(t, f, "web.test", mux)
	checker, err := validation.New(validation.Config{Resolver: f.zone.Addr, AllowLoopback: true, HTTPPort: port, HTTPTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Checker = checker
	o := f.validOrg()
	d, err := f.svc.AddDomain(f.ctx, f.admin, f.acct.ID, o.ID, "web.test", portal.DCVHTTP, "en")
	if err != nil {
		t.Fatal(err)
	}
	if in := f.svc.InstructionsFor(d); in.URL != "http://web.test/.well-known/pki-validation/fileauth.txt" {
		t.Fatalf("url %s", in.URL)
	}
	body = "something else"
	res, err := f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID)
	if err != nil || res.OK || !strings.Contains(strings.Join(res.Found, " "), "something else") {
		t.Fatalf("wrong content: %+v %v", res, err)
	}
	body = d.RandomValue + "\n"
	res, err = f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID)
	if err != nil || !res.OK {
		t.Fatalf("right content: %+v %v", res, err)
	}
	if got := f.domain(d.ID); got.ValidationMethod != validation.MethodHTTP {
		t.Fatalf("method %q", got.ValidationMethod)
	}
}

// Without the loopback allowance (normal configuration) the same loopback
// site is refused at dial time; the page gets a clear reason and the
// domain stays pending. Only 127.0.0.1 is ever contacted.
func TestDomainHTTPRefusesLoopbackByDefault(t *testing.T) {
	hits := 0
	mux := http.NewServeMux()
	mux.HandleFunc(validation.HTTPPath, func(w http.ResponseWriter, r *http.Request) { hits++ })
	f := newFx(t, nil)
	port := startSite(t, f, "inside.test", mux)
	checker, err := validation.New(validation.Config{Resolver: f.zone.Addr, HTTPPort: port, HTTPTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Checker = checker
	o := f.validOrg()
	d, err := f.svc.AddDomain(f.ctx, f.admin, f.acct.ID, o.ID, "inside.test", portal.DCVHTTP, "en")
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID)
	if err != nil || res.OK || !strings.Contains(res.Detail, "127.0.0.1") || !strings.Contains(res.Detail, "loopback") {
		t.Fatalf("loopback not refused clearly: %+v %v", res, err)
	}
	if hits != 0 || f.domain(d.ID).Status != portal.DomainPending {
		t.Fatalf("the site was reached (%d) or the domain validated", hits)
	}
}

// Check now is rate limited per domain.
func TestDomainCheckRateLimited(t *testing.T) {
	f := newFx(t, nil)
	f.svc.Limiter = validation.NewLimiter(2, time.Minute, 2)
	o := f.validOrg()
	d, err := f.svc.AddDomain(f.ctx, f.admin, f.acct.ID, o.ID, "busy.test", portal.DCVDNSTXT, "en")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	_, err = f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID)
	wantCode(t, err, portal.ETooMany)
	f.clock.Advance(time.Minute)
	if _, err := f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID); err != nil {
		t.Fatalf("after a minute: %v", err)
	}
}

// Email to constructed addresses (TLS BR 3.2.2.4.4): five emails, each with
// its own link; one approval validates; links are single-use and die when
// the domain is validated or new links are sent; links last 30 days.
func TestDomainConstructedEmail(t *testing.T) {
	f := newFx(t, nil)
	o := f.validOrg()
	d, err := f.svc.AddDomain(f.ctx, f.admin, f.acct.ID, o.ID, "mailco.test", portal.DCVEmail, "en")
	if err != nil {
		t.Fatal(err)
	}
	ms := f.mailsOf(validation.KindDomainApproval)
	want := []string{"admin@mailco.test", "administrator@mailco.test", "webmaster@mailco.test", "hostmaster@mailco.test", "postmaster@mailco.test"}
	if len(ms) != 5 {
		t.Fatalf("%d approval emails", len(ms))
	}
	toks := map[string]string{}
	for i, m := range ms {
		if m.To != want[i] {
			t.Errorf("email %d to %s, want %s", i, m.To, want[i])
		}
		toks[m.To] = token(t, m)
	}
	if toks["admin@mailco.test"] == toks["postmaster@mailco.test"] {
		t.Fatal("the random value is not unique per email")
	}
	var clear int
	_ = f.db.QueryRowContext(f.ctx, `SELECT COUNT(*) FROM domain_email_tokens WHERE token_hash = ?`, toks["admin@mailco.test"]).Scan(&clear)
	if clear != 0 {
		t.Fatal("link token stored in clear")
	}
	_, err = f.svc.CheckDomain(f.ctx, f.admin, f.acct.ID, d.ID)
	wantCode(t, err, portal.EConflict) // nothing to check for email

	// re-send: new links, the first ones die
	if err := f.svc.ChangeMethod(f.ctx, f.admin, f.acct.ID, d.ID, portal.DCVEmail, "en"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.DomainApprovalInfo(f.ctx, toks["admin@mailco.test"])
	if err != validation.ErrLinkKilled {
		t.Fatalf("old link after re-send: %v", err)
	}
	ms = f.mailsOf(validation.KindDomainApproval)[5:]
	info, err := f.svc.DomainApprovalInfo(f.ctx, token(t, ms[3]))
	if err != nil || info.Domain != "mailco.test" || info.Org != "Acme B.V." || info.Email != "hostmaster@mailco.test" {
		t.Fatalf("info: %+v %v", info, err)
	}
	f.clock.Advance(2 * time.Hour)
	if _, err := f.svc.ApproveDomain(f.ctx, token(t, ms[3]), "192.0.2.9"); err != nil {
		t.Fatal(err)
	}
	got := f.domain(d.ID)
	if got.Status != portal.DomainValidated || !got.ExpiresAt.Equal(t0.Add(2*time.Hour+398*24*time.Hour)) ||
		!strings.Contains(got.ValidationMethod, "3.2.2.4.4") || !strings.Contains(got.ValidationMethod, "hostmaster@mailco.test") {
		t.Fatalf("validated: %+v", got)
	}
	if _, err := f.svc.ApproveDomain(f.ctx, token(t, ms[3]), ""); err != validation.ErrLinkUsed {
		t.Fatalf("second use: %v", err)
	}
	if _, err := f.svc.ApproveDomain(f.ctx, token(t, ms[0]), ""); err != validation.ErrLinkKilled {
		t.Fatalf("sibling link after validation: %v", err)
	}
	if _, err := f.svc.DomainApprovalInfo(f.ctx, "nosuchtoken"); err != validation.ErrLinkUnknown {
		t.Fatalf("unknown: %v", err)
	}
	if f.adv.count(f.acct.ID) != 2 {
		t.Errorf("advance calls: %v", f.adv.calls)
	}
	es, _ := f.db.ListAudit(f.ctx, 1, 0)
	if es[0].Action != validation.AuditDomainValidated || es[0].Actor != "hostmaster@mailco.test" || es[0].IP != "192.0.2.9" {
		t.Fatalf("audit: %+v", es[0])
	}
}

func TestDomainEmailLinkExpires30Days(t *testing.T) {
	f := newFx(t, nil)
	o := f.validOrg()
	if _, err := f.svc.AddDomain(f.ctx, f.admin, f.acct.ID, o.ID, "slow.test", portal.DCVEmail, "en"); err != nil {
		t.Fatal(err)
	}
	ms := f.mailsOf(validation.KindDomainApproval)
	f.clock.Set(t0.Add(30*24*time.Hour - time.Second))
	if _, err := f.svc.DomainApprovalInfo(f.ctx, token(t, ms[0])); err != nil {
		t.Fatalf("just before 30 days: %v", err)
	}
	f.clock.Set(t0.Add(30 * 24 * time.Hour))
	if _, err := f.svc.ApproveDomain(f.ctx, token(t, ms[1]), ""); err != validation.ErrLinkExpired {
		t.Fatalf("after 30 days: %v", err)
	}
}

// Inside an order only email validation, and never a public mail domain;
// by prevalidation a public mail domain can be added.
func TestPublicMailDomainOnlyByPrevalidation(t *testing.T) {
	f := newFx(t, nil)
	o := f.validOrg()
	err := f.db.Tx(f.ctx, func(tx txT) error {
		return f.svc.StartDomainEmailForOrder(f.ctx, tx, f.acct.ID, o.ID, "gmail.com", 7, "en")
	})
	wantCode(t, err, portal.EInvalid)
	if ds, _ := f.svc.Domains(f.ctx, f.acct.ID); len(ds) != 0 || len(f.mailsOf(validation.KindDomainApproval)) != 0 {
		t.Fatal("gmail.com was added or mailed inside an order")
	}
	d, err := f.svc.AddDomain(f.ctx, f.admin, f.acct.ID, o.ID, "gmail.com", portal.DCVDNSTXT, "en")
	if err != nil || d.OrderID != 0 {
		t.Fatalf("prevalidation of gmail.com: %+v %v", d, err)
	}
}

// "Validate this domain by email as part of order N".
func TestStartDomainEmailForOrder(t *testing.T) {
	f := newFx(t, nil)
	o := f.validOrg()
	start := func(name string, order int64) error {
		return f.db.Tx(f.ctx, func(tx txT) error {
			return f.svc.StartDomainEmailForOrder(f.ctx, tx, f.acct.ID, o.ID, name, order, "nl")
		})
	}
	if err := start("order.test", 9); err != nil {
		t.Fatal(err)
	}
	ds, _ := f.svc.Domains(f.ctx, f.acct.ID)
	if len(ds) != 1 || ds[0].Method != portal.DCVEmail || ds[0].OrderID != 9 || ds[0].Lang != "nl" {
		t.Fatalf("domain: %+v", ds)
	}
	ms := f.mailsOf(validation.KindDomainApproval)
	if len(ms) != 5 || !strings.Contains(ms[0].Subject, "Keur S/MIME") {
		t.Fatalf("emails: %d %q", len(ms), ms[0].Subject)
	}
	// a second order for the same domain does not mail again while links live
	if err := start("order.test", 10); err != nil || len(f.mailsOf(validation.KindDomainApproval)) != 5 {
		t.Fatalf("second order: %v, %d emails", err, len(f.mailsOf(validation.KindDomainApproval)))
	}
	if _, err := f.svc.ApproveDomain(f.ctx, token(t, ms[0]), ""); err != nil {
		t.Fatal(err)
	}
	if err := start("order.test", 11); err != nil || len(f.mailsOf(validation.KindDomainApproval)) != 5 {
		t.Fatalf("current domain: %v", err)
	}
	err := f.db.Tx(f.ctx, func(tx txT) error {
		return f.svc.StartDomainEmailForOrder(f.ctx, tx, f.other.ID, o.ID, "x.test", 12, "en")
	})
	wantCode(t, err, portal.ENotFound)
}

// Another account's domain does not exist for the caller.
func TestDomainOtherAccountNotFound(t *testing.T) {
	f := newFx(t, nil)
	o := f.validOrg()
	d, err := f.svc.AddDomain(f.ctx, f.admin, f.acct.ID, o.ID, "mine.test", portal.DCVDNSTXT, "en")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Domain(f.ctx, f.other.ID, d.ID)
	wantCode(t, err, portal.ENotFound)
	_, err = f.svc.CheckDomain(f.ctx, f.admin, f.other.ID, d.ID)
	wantCode(t, err, portal.ENotFound)
	wantCode(t, f.svc.ChangeMethod(f.ctx, f.admin, f.other.ID, d.ID, portal.DCVHTTP, "en"), portal.ENotFound)
	if ds, _ := f.svc.Domains(f.ctx, f.other.ID); len(ds) != 0 {
		t.Fatal("other account lists the domain")
	}
}

// CAA issuemail through the service: another CA named blocks (and is
// audited), ours or no record allows; the parent's records apply.
func TestCAAIssueMail(t *testing.T) {
	f := newFx(t, nil)
	f.zone.add(t,
		`blocked.test. 60 IN CAA 0 issuemail "otherca.example"`,
		`ours.test. 60 IN CAA 0 issuemail "certdesk.test; account=1"`,
		`ours.test. 60 IN CAA 0 issuemail "otherca.example"`,
		`parent.test. 60 IN CAA 0 issuemail "otherca.example"`,
		`free.test. 60 IN CAA 0 issue "letsencrypt.org"`,
	)
	cases := []struct {
		email string
		ok    bool
	}{
		{"a@blocked.test", false}, {"a@ours.test", true}, {"a@free.test", true}, {"a@none.test", true},
		{"a@sub.parent.test", false},
	}
	for _, c := range cases {
		ok, reason, err := f.svc.CheckCAA(f.ctx, f.acct.ID, c.email)
		if err != nil || ok != c.ok || reason == "" {
			t.Errorf("%s: allowed %v (%q, %v), want %v", c.email, ok, reason, err, c.ok)
		}
	}
	_, reason, _ := f.svc.CheckCAA(f.ctx, f.acct.ID, "a@blocked.test")
	if !strings.Contains(reason, "otherca.example") || !strings.Contains(reason, "certdesk.test") {
		t.Errorf("reason does not name what was found and who we are: %q", reason)
	}
	if !hasAudit(f.auditActions(), "caa.refused a@blocked.test") {
		t.Error("refusal not audited")
	}
}
