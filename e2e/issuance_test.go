package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/mxschmitt/playwright-go"
	"golang.org/x/crypto/ocsp"

	"certdesk/e2e/harness"
)

// issEmptyDNS is a resolver on 127.0.0.1 that knows no name (NXDOMAIN for
// everything): the CAA issuemail check finds no records and allows
// issuance, and no query leaves the machine.
func issEmptyDNS(t *testing.T) string {
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

func issCSR(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Jane Doe"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func issDo(t *testing.T, page playwright.Page, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s (at %s): %v", what, page.URL(), err)
	}
}

func issText(t *testing.T, page playwright.Page, sel string) string {
	t.Helper()
	s, err := page.Locator(sel).First().InnerText()
	issDo(t, page, "text of "+sel, err)
	return strings.TrimSpace(s)
}

// issGet fetches a URL with the browser context's cookies (the dev
// mailbox's attachments need the CA administrator's session) and requires
// a 200 (cwFetch does the request).
func issGet(t *testing.T, ctx playwright.BrowserContext, srv *harness.Server, url string) ([]byte, http.Header) {
	t.Helper()
	status, hdr, body := cwFetch(t, ctx, srv, url)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	return body, hdr
}

// The demo administrator orders Secure Email for Business for the demo
// organization with a pasted CSR; the certificate is issued at once, the
// "client certificate issued" email with the certificate attached is in
// the dev mailbox; the certificate page downloads it; the requestor
// revokes it; OCSP (x/crypto/ocsp) answers revoked and the CRL lists it.
func TestIssuanceOrderDownloadRevoke(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Env: []string{"CERTDESK_DNS_RESOLVER=" + issEmptyDNS(t)}})
	page, _ := harness.NewPage(t, srv)
	harness.SignInAs(t, page, srv, harness.RoleAccountAdmin)

	harness.Goto(t, page, "/orders/new")
	_, err := page.Locator("#product").SelectOption(playwright.SelectOptionValues{Values: &[]string{"secure_email_sponsor"}})
	issDo(t, page, "product", err)
	_, err = page.Locator("#organization").SelectOption(playwright.SelectOptionValues{Labels: &[]string{"Example Corp B.V."}})
	issDo(t, page, "organization", err)
	issDo(t, page, "cn", page.Locator("input[name=r0_cn][value=name]").Check())
	issDo(t, page, "name", page.Locator("#r0_name").Fill("Jane Doe"))
	issDo(t, page, "email", page.Locator("#r0_email").Fill("jane@example.com"))
	issDo(t, page, "csr mode", page.Locator("input[name=r0_csrmode][value=csr]").Check())
	issDo(t, page, "csr", page.Locator("#r0_csr").Fill(issCSR(t)))
	issDo(t, page, "contract", page.Locator("input[name=payment_method][value=contract]").Check())
	issDo(t, page, "agree", page.Locator("#agree").Check())
	issDo(t, page, "submit", page.Locator("#submit-order").Click())
	issDo(t, page, "order page", page.WaitForURL("**/orders/*"))

	// Issued during the submit: the recipient row says so and links the
	// certificate.
	if st := issText(t, page, "tr[data-recipient='jane@example.com'] .badge"); !strings.Contains(strings.ToLower(st), "issued") {
		t.Fatalf("recipient status on the order page: %q", st)
	}

	// The email, with the certificate attached (PEM and PKCS#7 chain).
	msg := srv.WaitForMail(t, "jane@example.com", "certificate_issued", 15*time.Second)
	var pemIdx int
	var names []string
	for i, a := range msg.Attachments {
		names = append(names, a.Filename)
		if strings.HasSuffix(a.Filename, ".pem") {
			pemIdx = i + 1
		}
	}
	if pemIdx == 0 || len(msg.Attachments) != 2 || !strings.Contains(strings.Join(names, ","), ".p7b") {
		t.Fatalf("issued email attachments: %v", names)
	}
	caPage, caCtx := harness.NewPage(t, srv)
	harness.SignInAs(t, caPage, srv, harness.RoleCAAdmin)
	mailPEM, _ := issGet(t, caCtx, srv, fmt.Sprintf("%s/dev/mailbox/%d/attachments/%d", srv.BaseURL, msg.ID, pemIdx))
	b, _ := pem.Decode(mailPEM)
	if b == nil {
		t.Fatalf("the PEM attachment is not PEM: %q", mailPEM)
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.EmailAddresses[0] != "jane@example.com" || leaf.Subject.CommonName != "Jane Doe" || leaf.Subject.Organization[0] != "Example Corp B.V." {
		t.Errorf("certificate: SAN %v, subject %s", leaf.EmailAddresses, leaf.Subject)
	}
	if n := srv.WaitForMail(t, "admin@example.com", "certificate_issued_notice", 5*time.Second); !strings.Contains(n.Subject, "jane@example.com") {
		t.Errorf("requestor notice: %q", n.Subject)
	}

	// The certificate page, and its PEM download.
	issDo(t, page, "view certificate", page.Locator("tr[data-recipient='jane@example.com'] a[href^='/certificates/']").Click())
	issDo(t, page, "certificate page", page.WaitForURL("**/certificates/*"))
	serial := issText(t, page, "#cert-serial")
	if want := strings.ToUpper(leaf.SerialNumber.Text(16)); serial != want {
		t.Errorf("page serial %s, mailed certificate %s", serial, want)
	}
	if vs := harness.AtLeast(harness.Axe(t, page), "serious"); len(vs) > 0 {
		t.Errorf("axe on the certificate page:\n%s", harness.FormatViolations(vs))
	}
	dl, err := page.ExpectDownload(func() error { return page.Locator("a[href$='/download/pem']").Click() })
	issDo(t, page, "download", err)
	path, err := dl.Path()
	issDo(t, page, "download path", err)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, mailPEM) {
		t.Errorf("downloaded PEM differs from the mailed one")
	}

	// Revoke (keyCompromise), accepting the confirmation dialog.
	page.OnDialog(func(d playwright.Dialog) { _ = d.Accept() })
	_, err = page.Locator("#reason").SelectOption(playwright.SelectOptionValues{Values: &[]string{"keyCompromise"}})
	issDo(t, page, "reason", err)
	issDo(t, page, "revoke", page.Locator("form[action$='/revoke'] button[type=submit]").Click())
	if _, err := page.WaitForFunction(`() => document.querySelector("#cert-status") && document.querySelector("#cert-status").textContent.trim() === "Revoked"`, nil); err != nil {
		t.Fatalf("status after revoking: %q (%v)", issText(t, page, "#cert-status"), err)
	}

	// OCSP at the certificate's AIA URL says revoked.
	issuerDER, _ := issGet(t, nil, srv, leaf.IssuingCertificateURL[0])
	issuer, err := x509.ParseCertificate(issuerDER)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(leaf.OCSPServer[0], srv.BaseURL) || !strings.HasPrefix(leaf.CRLDistributionPoints[0], srv.BaseURL) {
		t.Fatalf("AIA/CRL DP not on the server: %v %v", leaf.OCSPServer, leaf.CRLDistributionPoints)
	}
	oreq, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(leaf.OCSPServer[0], "application/ocsp-request", bytes.NewReader(oreq))
	if err != nil {
		t.Fatal(err)
	}
	obody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	or, err := ocsp.ParseResponseForCert(obody, leaf, issuer)
	if err != nil {
		t.Fatalf("OCSP: %v", err)
	}
	if or.Status != ocsp.Revoked || or.RevocationReason != ocsp.KeyCompromise {
		t.Errorf("OCSP status %d reason %d, want revoked/keyCompromise", or.Status, or.RevocationReason)
	}

	// The CRL at the certificate's distribution point lists it.
	crlDER, hdr := issGet(t, nil, srv, leaf.CRLDistributionPoints[0])
	crl, err := x509.ParseRevocationList(crlDER)
	if err != nil || hdr.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("CRL: %v %s", err, hdr.Get("Content-Type"))
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, rc := range crl.RevokedCertificateEntries {
		if rc.SerialNumber.Cmp(leaf.SerialNumber) == 0 && rc.ReasonCode == ocsp.KeyCompromise {
			listed = true
		}
	}
	if !listed {
		t.Errorf("the CRL (%d entries) does not list the revoked certificate", len(crl.RevokedCertificateEntries))
	}
	_ = caPage
}
