package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/mxschmitt/playwright-go"

	"certdesk/e2e/harness"
)

// ordEmptyDNS is a resolver on 127.0.0.1 that answers NXDOMAIN to every
// question, so the CA's CAA check before issuance sends nothing off the
// machine and finds no CAA record.
func ordEmptyDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		m.RecursionAvailable = true
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// ordKeyAndCSR makes an ECDSA P-256 key, its CSR and the key as PKCS#8 PEM.
func ordKeyAndCSR(t *testing.T) (csrPEM, keyPEM string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Alice Example"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// ordPage wraps a page with fail-fast helpers.
type ordPage struct {
	t *testing.T
	p playwright.Page
}

func (o ordPage) must(what string, err error) {
	o.t.Helper()
	if err != nil {
		o.t.Fatalf("%s (at %s): %v", what, o.p.URL(), err)
	}
}

func (o ordPage) fill(sel, v string) { o.t.Helper(); o.must("fill "+sel, o.p.Locator(sel).Fill(v)) }
func (o ordPage) check(sel string)   { o.t.Helper(); o.must("check "+sel, o.p.Locator(sel).Check()) }
func (o ordPage) click(sel string)   { o.t.Helper(); o.must("click "+sel, o.p.Locator(sel).Click()) }

func (o ordPage) selectValue(sel, v string) {
	o.t.Helper()
	_, err := o.p.Locator(sel).SelectOption(playwright.SelectOptionValues{Values: &[]string{v}})
	o.must("select "+sel, err)
}

func (o ordPage) value(sel string) string {
	o.t.Helper()
	v, err := o.p.Locator(sel).InputValue()
	o.must("value of "+sel, err)
	return v
}

func (o ordPage) text(sel string) string {
	o.t.Helper()
	s, err := o.p.Locator(sel).First().InnerText()
	o.must("text of "+sel, err)
	return strings.TrimSpace(s)
}

func (o ordPage) checked(sel string) bool {
	o.t.Helper()
	b, err := o.p.Locator(sel).IsChecked()
	o.must("checked "+sel, err)
	return b
}

// submitTo clicks a button and waits for the page its form leads to (a
// URL matching the regular expression).
func (o ordPage) submitTo(sel, urlRE string) {
	o.t.Helper()
	re := regexp.MustCompile(urlRE)
	_, err := o.p.ExpectNavigation(func() error { return o.p.Locator(sel).Click() },
		playwright.PageExpectNavigationOptions{URL: func(u string) bool { return re.MatchString(u) }})
	o.must("click "+sel+" and wait for "+urlRE, err)
}

// ordDemoForm opens the order form as the demo administrator, skipping
// the test when the dev seed has no validated demo organization.
func ordDemoForm(t *testing.T, o ordPage, srv *harness.Server) string {
	t.Helper()
	harness.SignInAs(t, o.p, srv, harness.RoleAccountAdmin)
	harness.Goto(t, o.p, "/orders/new")
	n, err := o.p.Locator("#organization option", playwright.PageLocatorOptions{HasText: "Example Corp B.V."}).Count()
	o.must("organization options", err)
	if n == 0 {
		t.Skip("the dev seed has no validated demo organization \"Example Corp B.V.\" on the order form (cmd/certdesk/dev_validation.go)")
	}
	org, err := o.p.Locator("#organization option", playwright.PageLocatorOptions{HasText: "Example Corp B.V."}).First().GetAttribute("value")
	o.must("organization id", err)
	return org
}

// TestOrderForm drives the order form in Chromium against the real
// binary in dev mode (one server for both flows: a start creates the CA).
func TestOrderForm(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Env: []string{"CERTDESK_DNS_RESOLVER=" + ordEmptyDNS(t)}})
	t.Run("ThreeRecipientsByContract", func(t *testing.T) { ordThreeRecipientsByContract(t, srv) })
	t.Run("BalanceDepositAndCardCancel", func(t *testing.T) { ordBalanceDepositAndCardCancel(t, srv) })
}

// The demo administrator orders Secure Email for Business for three
// example.com recipients paid by contract: one with a pasted CSR, two to
// generate in the browser. The first try has a gmail.com address and a
// pasted private key: both are refused beside their fields and the form
// keeps everything else. The order page then shows each recipient's
// status and the key generation tasks. A gmail.com address is accepted
// for Secure Email for Individual.
func ordThreeRecipientsByContract(t *testing.T, srv *harness.Server) {
	page, _ := harness.NewPage(t, srv)
	o := ordPage{t, page}
	org := ordDemoForm(t, o, srv)
	csr, key := ordKeyAndCSR(t)

	o.selectValue("#product", "secure_email_sponsor")
	o.selectValue("#organization", org)
	o.selectValue("#signature_hash", "sha384")
	o.check("input[name=r0_cn][value=name]")
	o.fill("#r0_name", "Alice Example")
	o.fill("#r0_email", "alice@example.com")
	o.check("input[name=r0_csrmode][value=csr]")
	o.fill("#r0_csr", csr)
	o.click("#add-recipient") // instant, with JavaScript
	o.click("#add-recipient")
	if n, _ := page.Locator(".recipient").Count(); n != 3 || o.value("#recipient-count") != "3" {
		t.Fatalf("%d recipient blocks after two adds", n)
	}
	// Business names the person: new recipients default to Name
	if !o.checked("input[name=r1_cn][value=name]") || !o.checked("input[name=r2_cn][value=name]") {
		t.Fatal("added recipients do not default to Name for Secure Email for Business")
	}
	o.fill("#r1_name", "Bob Example")
	o.fill("#r1_email", "bob@gmail.com")
	o.fill("#r2_name", "Carol Example")
	o.fill("#r2_email", "carol@example.com")
	o.check("input[name=r2_csrmode][value=csr]")
	o.fill("#r2_csr", key)
	o.fill("#additional_emails", "audit@example.com")
	o.check("input[name=payment_method][value=contract]")
	o.check("#agree")
	o.submitTo("#submit-order", `/orders/new$`)

	if msg := o.text("#r1_email-error"); !strings.Contains(msg, "gmail.com is a public mail provider") {
		t.Fatalf("gmail for Business: %q", msg)
	}
	if msg := o.text("#r2_csr-error"); !strings.HasPrefix(msg, "This is a private key. Never share it") {
		t.Fatalf("private key: %q", msg)
	}
	if errs, _ := page.Locator("form p.error").AllInnerTexts(); len(errs) != 2 {
		t.Fatalf("want the two errors only, got %q", errs)
	}
	body, _ := page.Content()
	if strings.Contains(body, "PRIVATE KEY-----") {
		t.Fatal("the private key came back in the page")
	}
	// everything else is kept
	for sel, want := range map[string]string{"#product": "secure_email_sponsor", "#organization": org, "#signature_hash": "sha384",
		"#r0_name": "Alice Example", "#r0_email": "alice@example.com", "#r0_csr": csr, "#r1_name": "Bob Example",
		"#r1_email": "bob@gmail.com", "#r2_name": "Carol Example", "#r2_email": "carol@example.com", "#additional_emails": "audit@example.com", "#r2_csr": ""} {
		if got := o.value(sel); strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Errorf("%s: %q, want %q", sel, got, want)
		}
	}
	if !o.checked("input[name=payment_method][value=contract]") || !o.checked("#agree") || !o.checked("input[name=r0_cn][value=name]") ||
		!o.checked("input[name=r0_csrmode][value=csr]") {
		t.Error("choices not kept")
	}
	if t.Failed() {
		t.FailNow()
	}

	o.fill("#r1_email", "bob@example.com")
	o.check("input[name=r2_csrmode][value=browser]")
	o.submitTo("#submit-order", `/orders/\d+$`)
	orderURL := page.URL()

	status := func(email string) string {
		return strings.ToLower(o.text("tr[data-recipient='" + email + "'] .badge"))
	}
	// issuance may or may not be wired: the pasted CSR is issued or being issued
	st := status("alice@example.com")
	if st != "issued" && st != "being issued" {
		t.Errorf("alice (pasted CSR): %q", st)
	}
	t.Logf("order %s: alice (pasted CSR) %q", orderURL, st)
	for _, e := range []string{"bob@example.com", "carol@example.com"} {
		if st := status(e); st != "awaiting key generation" {
			t.Errorf("%s: %q", e, st)
		}
	}
	tasks := o.text("ol.tasks")
	for _, want := range []string{"Generate the key for bob@example.com", "Generate the key for carol@example.com"} {
		if !strings.Contains(tasks, want) {
			t.Errorf("next steps lack %q:\n%s", want, tasks)
		}
	}
	if strings.Contains(tasks, "alice@example.com") && !strings.Contains(tasks, "issued") {
		t.Errorf("next steps for alice: %s", tasks)
	}
	props := o.text("dl.props")
	for _, want := range []string{"Secure Email for Business", "Example Corp B.V.", "SHA-384", "audit@example.com"} {
		if !strings.Contains(props, want) {
			t.Errorf("order details lack %q:\n%s", want, props)
		}
	}

	// gmail.com for Secure Email for Individual: accepted, mailbox validation
	harness.Goto(t, page, "/orders/new")
	o.selectValue("#product", "secure_email_mailbox")
	if hidden, _ := page.Locator("#org-field").IsHidden(); !hidden {
		t.Error("the organization field is shown for Secure Email for Individual")
	}
	o.fill("#r0_email", "jane.doe@gmail.com")
	o.check("input[name=payment_method][value=contract]")
	o.check("#agree")
	o.submitTo("#submit-order", `/orders/\d+$`)
	if page.URL() == orderURL {
		t.Fatal("no new order")
	}
	if st := status("jane.doe@gmail.com"); st != "awaiting mailbox validation" {
		t.Fatalf("gmail for Individual: %q", st)
	}
}

// Paying from a balance that is too low offers "Deposit funds"; the
// deposit (card 4242 4242 4242 4242) brings the requestor back to the
// form with everything typed, and the order goes through. Then a
// card-paid order is cancelled and its authorization release shows in the
// account's ledger.
func ordBalanceDepositAndCardCancel(t *testing.T, srv *harness.Server) {
	page, _ := harness.NewPage(t, srv)
	o := ordPage{t, page}
	org := ordDemoForm(t, o, srv)

	o.selectValue("#product", "secure_email_organization")
	o.selectValue("#organization", org)
	o.fill("#r0_email", "dave@example.com")
	o.click("#add-recipient")
	o.fill("#r1_email", "erin@example.com")
	o.check("input[value='2y'][name=validity]")
	o.fill("#additional_emails", "finance@example.com")
	o.check("input[name=payment_method][value=balance]")
	o.check("#agree")
	o.submitTo("#submit-order", `/orders/new$`)
	if msg := o.text("#payment_method-error"); !strings.Contains(msg, "too low for this order (€156.00)") {
		t.Fatalf("balance message: %q", msg)
	}

	o.submitTo("button[name=action][value=deposit]", `/account/deposit\?return=`)
	if n, _ := page.Locator("input[name=card_source][value=new]").Count(); n > 0 {
		o.check("input[name=card_source][value=new]")
	}
	o.fill("#amount", "200")
	o.fill("#card_name", "Alex Admin")
	o.fill("#card_number", "4242 4242 4242 4242")
	o.fill("#card_expiry", "12/30")
	o.fill("#card_cvc", "123")
	o.submitTo("form[action='/account/deposit'] button[type=submit]", `/orders/new\?draft=`)

	for sel, want := range map[string]string{"#product": "secure_email_organization", "#organization": org, "#r0_email": "dave@example.com",
		"#r1_email": "erin@example.com", "#additional_emails": "finance@example.com"} {
		if got := o.value(sel); got != want {
			t.Errorf("after the deposit %s: %q, want %q", sel, got, want)
		}
	}
	if !o.checked("input[name=payment_method][value=balance]") || !o.checked("input[value='2y'][name=validity]") || !o.checked("#agree") {
		t.Error("choices lost across the deposit")
	}
	if !strings.Contains(o.text("fieldset:has(input[name=payment_method])"), "€200.00") {
		t.Error("the new balance is not shown")
	}
	if t.Failed() {
		t.FailNow()
	}
	o.submitTo("#submit-order", `/orders/\d+$`)
	if p := o.text("dl.props"); !strings.Contains(p, "€156.00") {
		t.Fatalf("order on balance: %s", p)
	}

	// a card-paid order, cancelled: the authorization is released
	harness.Goto(t, page, "/orders/new")
	o.selectValue("#product", "secure_email_organization")
	o.selectValue("#organization", org)
	o.fill("#r0_email", "gina@example.com")
	o.check("input[name=payment_method][value=card]")
	if n, _ := page.Locator("input[name=card_on_file]").Count(); n > 0 {
		if on, _ := page.Locator("input[name=card_on_file]").IsChecked(); on {
			o.must("uncheck card on file", page.Locator("input[name=card_on_file]").Uncheck())
		}
	}
	o.fill("#card_name", "Alex Admin")
	o.fill("#card_number", "4242 4242 4242 4242")
	o.fill("#card_expiry", "12/30")
	o.fill("#card_cvc", "123")
	o.check("#agree")
	o.submitTo("#submit-order", `/orders/\d+$`)
	orderPath := page.URL()[len(srv.BaseURL):]
	orderNo := regexp.MustCompile(`/orders/(\d+)`).FindStringSubmatch(orderPath)[1]

	page.OnDialog(func(d playwright.Dialog) { _ = d.Accept() })
	o.submitTo("button.danger[data-confirm]", regexp.QuoteMeta(orderPath)+"$")
	if st := o.text("dl.props .badge"); st != "Cancelled" {
		t.Fatalf("order status after cancel: %q", st)
	}
	if st := strings.ToLower(o.text("tr[data-recipient='gina@example.com'] .badge")); st != "cancelled" {
		t.Fatalf("recipient after cancel: %q", st)
	}

	harness.Goto(t, page, "/account")
	var kinds []string
	rows := page.Locator("table tr", playwright.PageLocatorOptions{HasText: "4242"})
	n, err := rows.Count()
	o.must("ledger rows", err)
	for i := 0; i < n; i++ {
		txt, _ := rows.Nth(i).InnerText()
		if regexp.MustCompile(`(^|\D)` + orderNo + `(\D|$)`).MatchString(txt) {
			kinds = append(kinds, txt)
		}
	}
	joined := strings.Join(kinds, "\n")
	if !strings.Contains(joined, "Card authorized") || !strings.Contains(joined, "Released") {
		t.Fatalf("ledger rows of order %s:\n%s", orderNo, joined)
	}
}
