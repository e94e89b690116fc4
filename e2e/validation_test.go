package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/mxschmitt/playwright-go"

	"certdesk/e2e/harness"
)

// testZone is a DNS server on 127.0.0.1 (UDP) that the portal is pointed
// at with CERTDESK_DNS_RESOLVER: it answers records of the asked type at
// the name, else a CNAME at the name, else NXDOMAIN.
type testZone struct {
	addr string
	mu   sync.Mutex
	rrs  map[string][]dns.RR
}

func startTestZone(t *testing.T) *testZone {
	t.Helper()
	z := &testZone{rrs: map[string][]dns.RR{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: z}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z
}

func (z *testZone) add(t *testing.T, records ...string) {
	t.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		n := dns.CanonicalName(rr.Header().Name)
		z.rrs[n] = append(z.rrs[n], rr)
	}
}

func (z *testZone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
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

func fill(t *testing.T, page playwright.Page, fields map[string]string) {
	t.Helper()
	for sel, v := range fields {
		if err := page.Locator(sel).Fill(v); err != nil {
			t.Fatalf("fill %s: %v", sel, err)
		}
	}
}

func click(t *testing.T, page playwright.Page, sel string) {
	t.Helper()
	if err := page.Locator(sel).Click(); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
	if err := page.WaitForLoadState(); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, page playwright.Page, sel string) string {
	t.Helper()
	s, err := page.Locator(sel).First().InnerText()
	if err != nil {
		t.Fatalf("text of %s on %s: %v", sel, page.URL(), err)
	}
	return strings.TrimSpace(s)
}

// axeClean fails the test on serious or critical axe findings.
func axeClean(t *testing.T, page playwright.Page) {
	t.Helper()
	if vs := harness.AtLeast(harness.Axe(t, page), "serious"); len(vs) > 0 {
		t.Fatalf("axe on %s:\n%s", page.URL(), harness.FormatViolations(vs))
	}
}

// addAndSubmitOrg drives the organization form as the account
// administrator and submits the organization; it returns its path.
func addAndSubmitOrg(t *testing.T, srv *harness.Server, page playwright.Page, name string) string {
	t.Helper()
	harness.Goto(t, page, "/organizations")
	click(t, page, "#add-org")
	fill(t, page, map[string]string{"#legal_name": name, "#address": "Damrak 1", "#postal_code": "1012 LG", "#city": "Amsterdam",
		"#country": "NL", "#phone": "+31 20 555 0177", "#org_contact_name": "Olga Org", "#org_contact_email": "olga@acme.test",
		"#tech_contact_name": "Tom Tech", "#tech_contact_email": "tom@acme.test"})
	click(t, page, "#save-org")
	if !strings.Contains(page.URL(), "/organizations/") || text(t, page, "h1") != name {
		t.Fatalf("after saving: %s %q", page.URL(), text(t, page, "h1"))
	}
	path := page.URL()[len(srv.BaseURL):]
	click(t, page, "#submit-org")
	if st := text(t, page, "#org-status"); st != "validation pending" {
		t.Fatalf("status after submit: %q", st)
	}
	return path
}

// agentOpens signs the validation agent in (in its own browser context)
// and opens the organization from the queue.
func agentOpens(t *testing.T, srv *harness.Server, name string) playwright.Page {
	t.Helper()
	agent, _ := harness.NewPage(t, srv)
	harness.SignInAs(t, agent, srv, harness.RoleValidationAgent)
	harness.Goto(t, agent, "/staff/queue")
	click(t, agent, "text="+name)
	if !strings.Contains(text(t, agent, "#org-phone"), "+31 20 555 0177") {
		t.Fatal("the agent does not see the number to call")
	}
	return agent
}

// Admin adds an organization and submits it; the agent marks "call
// completed"; the organization shows validated until 825 days on.
func TestValidationOrgCallCompleted(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Env: []string{"CERTDESK_DNS_RESOLVER=127.0.0.1:9"}})
	page, _ := harness.NewPage(t, srv)
	harness.SignInAs(t, page, srv, harness.RoleAccountAdmin)
	path := addAndSubmitOrg(t, srv, page, "Call Me B.V.")
	srv.WaitForMail(t, "olga@acme.test", "org_call_notice", 10*time.Second)

	agent := agentOpens(t, srv, "Call Me B.V.")
	fill(t, agent, map[string]string{"#notes-call": "Spoke to Olga; number from the KvK register."})
	before := time.Now().UTC()
	click(t, agent, "#call-completed")
	after := time.Now().UTC()

	harness.Goto(t, page, path)
	if st := text(t, page, "#org-status"); st != "validated" {
		t.Fatalf("status: %q", st)
	}
	exp := text(t, page, "#org-expires-at")
	d1, d2 := before.Add(825*24*time.Hour).Format("2006-01-02"), after.Add(825*24*time.Hour).Format("2006-01-02")
	if exp != d1 && exp != d2 {
		t.Fatalf("expires %q, want %s (825 days on)", exp, d1)
	}
	if !strings.Contains(text(t, page, "#org-expires"), exp) {
		t.Fatalf("the status line does not show the expiry")
	}
}

// "Left a message": the agent gets a code to read onto the voicemail; the
// contacts get an email saying a message with a code was left and where
// to enter it (the code itself travels only by voicemail); a wrong code
// shows an error beside the field; the right code validates.
func TestValidationOrgLeftMessage(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Env: []string{"CERTDESK_DNS_RESOLVER=127.0.0.1:9"}})
	page, _ := harness.NewPage(t, srv)
	harness.SignInAs(t, page, srv, harness.RoleAccountAdmin)
	path := addAndSubmitOrg(t, srv, page, "Voicemail B.V.")

	agent := agentOpens(t, srv, "Voicemail B.V.")
	click(t, agent, "#left-message")
	code := text(t, agent, "#new-code")
	if len(strings.ReplaceAll(code, "-", "")) != 16 {
		t.Fatalf("code %q", code)
	}
	msg := srv.WaitForMail(t, "olga@acme.test", "org_message_left", 10*time.Second)
	link := harness.ExtractLink(msg.Text, "/organizations/")
	if link == "" || !strings.Contains(msg.Text, "+31 20 555 0177") {
		t.Fatalf("the email does not say where the message was left or where to enter the code:\n%s", msg.Text)
	}
	if strings.Contains(msg.Text, code) || strings.Contains(msg.HTML, code) {
		t.Fatal("the code was emailed; it must reach the contact only by voicemail")
	}

	harness.Goto(t, page, link)
	if !strings.HasSuffix(page.URL(), path) {
		t.Fatalf("mail link %s does not lead to %s", link, path)
	}
	fill(t, page, map[string]string{"#code": "AAAA-BBBB-CCCC-DDDD"})
	click(t, page, "#enter-code")
	if e := text(t, page, "#code-error"); !strings.Contains(e, "not correct") {
		t.Fatalf("wrong code error: %q", e)
	}
	if v, _ := page.Locator("#code").InputValue(); v != "AAAA-BBBB-CCCC-DDDD" {
		t.Fatalf("typed code not kept: %q", v)
	}
	axeClean(t, page)
	fill(t, page, map[string]string{"#code": strings.ToLower(code)})
	click(t, page, "#enter-code")
	if st := text(t, page, "#org-status"); st != "validated" {
		t.Fatalf("status after the right code: %q", st)
	}
}

// The four domain methods end to end, with the portal's DNS pointed at a
// test DNS server and its HTTP check at a loopback web server, both by
// configuration (environment), against the dev seed's validated
// organization.
func TestValidationDomainMethods(t *testing.T) {
	zone := startTestZone(t)
	var mu sync.Mutex
	files := map[string]string{}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		host, _, _ := net.SplitHostPort(r.Host)
		if r.URL.Path != "/.well-known/pki-validation/fileauth.txt" || files[host] == "" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, files[host])
	}))
	t.Cleanup(web.Close)
	_, port, _ := net.SplitHostPort(web.Listener.Addr().String())
	srv := harness.StartServer(t, harness.ServerOptions{Env: []string{
		"CERTDESK_DNS_RESOLVER=" + zone.addr,
		"CERTDESK_VALIDATION_ALLOW_LOOPBACK=1",
		"CERTDESK_VALIDATION_HTTP_PORT=" + port,
		"CERTDESK_DCV_CNAME_TARGET=dcv.ca.test",
	}})
	page, _ := harness.NewPage(t, srv)
	harness.SignInAs(t, page, srv, harness.RoleAccountAdmin)

	add := func(name, method string) {
		t.Helper()
		harness.Goto(t, page, "/domains")
		if _, err := page.Locator("#organization").SelectOption(playwright.SelectOptionValues{Labels: &[]string{"Example Corp B.V."}}); err != nil {
			t.Fatal(err)
		}
		fill(t, page, map[string]string{"#domain": name})
		if err := page.Locator("input[name=method][value=" + method + "]").Check(); err != nil {
			t.Fatal(err)
		}
		click(t, page, "#add-domain")
		if text(t, page, "h1") != name {
			t.Fatalf("after adding %s: %s", name, page.URL())
		}
	}
	checkValidated := func(name string) {
		t.Helper()
		click(t, page, "#check-now")
		if st := text(t, page, "#domain-status"); st != "validated" {
			res, _ := page.Locator("main").InnerText()
			t.Fatalf("%s: status %q; page:\n%s", name, st, res)
		}
	}

	// DNS TXT: first a clear "not found", then validated
	add("txt.example.net", "dns_txt")
	value := text(t, page, "#dcv-value")
	click(t, page, "#check-now")
	if r := text(t, page, "#check-result"); !strings.Contains(r, "Not found yet") || !strings.Contains(r, value) {
		t.Fatalf("first check: %q", r)
	}
	axeClean(t, page)
	zone.add(t, fmt.Sprintf(`_dnsauth.txt.example.net. 60 IN TXT "%s"`, value))
	checkValidated("txt.example.net")

	// DNS CNAME
	add("cname.example.net", "dns_cname")
	if tg := text(t, page, "#cname-target"); tg != "dcv.ca.test" {
		t.Fatalf("CNAME target %q", tg)
	}
	zone.add(t, text(t, page, "#cname-name")+". 60 IN CNAME dcv.ca.test.")
	checkValidated("cname.example.net")

	// HTTP file on the loopback web server
	add("web.example.net", "http")
	zone.add(t, "web.example.net. 60 IN A 127.0.0.1")
	mu.Lock()
	files["web.example.net"] = text(t, page, "#dcv-value")
	mu.Unlock()
	checkValidated("web.example.net")

	// Email to a constructed address, through the dev mailbox
	add("mail.example.net", "email")
	msg := srv.WaitForMail(t, "postmaster@mail.example.net", "domain_email_approval", 10*time.Second)
	link := harness.ExtractLink(msg.Text, "/verify/domain/")
	if link == "" {
		t.Fatalf("no approval link in:\n%s", msg.Text)
	}
	outsider, _ := harness.NewPage(t, srv)
	harness.Goto(t, outsider, link)
	click(t, outsider, "#verify-confirm")
	if d := text(t, outsider, "#verify-done"); !strings.Contains(d, "mail.example.net is validated") {
		t.Fatalf("approval: %q", d)
	}
	harness.Goto(t, outsider, link)
	if p := text(t, outsider, "#verify-problem"); !strings.Contains(p, "already been used") {
		t.Fatalf("second use: %q", p)
	}
	page.Reload()
	if st := text(t, page, "#domain-status"); st != "validated" {
		t.Fatalf("mail.example.net: %q", st)
	}
}
