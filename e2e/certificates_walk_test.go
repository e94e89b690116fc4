package e2e

// The certificate experience walked as a requestor and a recipient would
// (issue 5): the "client certificate issued" email and the notices, the
// certificate list and page, the downloads, revocation from the page and
// what OCSP and the CRL then say, and the certificate used with openssl
// cms for signing and encryption. Helpers are prefixed cw.

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxschmitt/playwright-go"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"certdesk/e2e/harness"
)

// cwKey is an RSA key with a CSR for it, and the key's PEM file (for
// openssl), so the test can use the certificate issued for it.
type cwKey struct {
	key     *rsa.PrivateKey
	csrPEM  string
	keyFile string
}

func cwNewKey(t *testing.T, dir, cn string) cwKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, k)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cwKey{key: k, keyFile: kf,
		csrPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}
}

// cwOrder fills and submits the order form for Secure Email for Business
// on the demo organization, one recipient with a pasted CSR, paid from the
// contract, and waits for the order page.
func cwOrder(t *testing.T, page playwright.Page, name, email, csr, additional string) {
	t.Helper()
	harness.Goto(t, page, "/orders/new")
	_, err := page.Locator("#product").SelectOption(playwright.SelectOptionValues{Values: &[]string{"secure_email_sponsor"}})
	issDo(t, page, "product", err)
	_, err = page.Locator("#organization").SelectOption(playwright.SelectOptionValues{Labels: &[]string{"Example Corp B.V."}})
	issDo(t, page, "organization", err)
	issDo(t, page, "cn", page.Locator("input[name=r0_cn][value=name]").Check())
	issDo(t, page, "name", page.Locator("#r0_name").Fill(name))
	issDo(t, page, "email", page.Locator("#r0_email").Fill(email))
	issDo(t, page, "csr mode", page.Locator("input[name=r0_csrmode][value=csr]").Check())
	issDo(t, page, "csr", page.Locator("#r0_csr").Fill(csr))
	if additional != "" {
		issDo(t, page, "additional", page.Locator("#additional_emails").Fill(additional))
	}
	issDo(t, page, "contract", page.Locator("input[name=payment_method][value=contract]").Check())
	issDo(t, page, "agree", page.Locator("#agree").Check())
	issDo(t, page, "submit", page.Locator("#submit-order").Click())
	issDo(t, page, "order page", page.WaitForURL(regexp.MustCompile(`/orders/\d+$`)))
}

// cwServer starts the real server (a DNS resolver with no records: no
// CAA) and signs the demo account administrator in on a fresh page.
func cwServer(t *testing.T, opts ...harness.PageOption) (*harness.Server, playwright.Page, playwright.BrowserContext) {
	t.Helper()
	srv := harness.StartServer(t, harness.ServerOptions{Env: []string{"CERTDESK_DNS_RESOLVER=" + issEmptyDNS(t)}})
	page, ctx := harness.NewPage(t, srv, opts...)
	harness.SignInAs(t, page, srv, harness.RoleAccountAdmin)
	return srv, page, ctx
}

// cwCASession signs the CA administrator in on a page of its own and
// returns its context (the dev mailbox's attachments need that session).
func cwCASession(t *testing.T, srv *harness.Server) playwright.BrowserContext {
	t.Helper()
	caPage, caCtx := harness.NewPage(t, srv)
	harness.SignInAs(t, caPage, srv, harness.RoleCAAdmin)
	return caCtx
}

// cwFetch GETs url with the browser context's cookies (nil: anonymous)
// without following redirects, and returns status, headers and body.
func cwFetch(t *testing.T, ctx playwright.BrowserContext, srv *harness.Server, url string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if ctx != nil {
		cookies, err := ctx.Cookies(srv.BaseURL)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cookies {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// cwAttachment reads attachment n (1-based) of a dev mailbox message.
func cwAttachment(t *testing.T, caCtx playwright.BrowserContext, srv *harness.Server, msg harness.Message, suffix string) []byte {
	t.Helper()
	for i, a := range msg.Attachments {
		if strings.HasSuffix(a.Filename, suffix) {
			b, _ := issGet(t, caCtx, srv, fmt.Sprintf("%s/dev/mailbox/%d/attachments/%d", srv.BaseURL, msg.ID, i+1))
			return b
		}
	}
	t.Fatalf("message #%d to %s has no %s attachment: %+v", msg.ID, msg.To, suffix, msg.Attachments)
	return nil
}

// cwOpenSSL runs openssl with args and returns its standard output; a
// non-zero exit fails the test with its standard error.
func cwOpenSSL(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("openssl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String() + errb.String()
}

// cwPEMCerts parses every CERTIFICATE block of text.
func cwPEMCerts(t *testing.T, text string) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

// cwMailCounts counts the dev mailbox's messages by "kind to".
func cwMailCounts(msgs []harness.Message) map[string]int {
	n := map[string]int{}
	for _, m := range msgs {
		n[m.Kind+" "+strings.ToLower(m.To)]++
	}
	return n
}

func cwSHA256(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// cwHexEq compares fingerprints whatever their case and separators.
func cwHexEq(shown, want string) bool {
	clean := strings.NewReplacer(":", "", " ", "", "\n", "").Replace(strings.ToLower(shown))
	return clean == strings.ToLower(want)
}

// TestCertWalkIssuedMailEnglish: an English requestor orders for Jane with
// a CSR of their own and three additional addresses (one of them Jane's,
// one the requestor's in capitals). Jane gets one "issued" email whose PEM
// is the issued certificate and whose .p7b opens with openssl pkcs7 and
// holds the certificate and its chain; the requestor and the other
// address get one notice each with a working link to the certificate
// page, which a signed-out requestor reaches after signing in (it led to
// the dashboard); someone without an account sees nothing of it.
func TestCertWalkIssuedMailEnglish(t *testing.T) {
	dir := t.TempDir()
	srv, page, _ := cwServer(t)
	caCtx := cwCASession(t, srv)

	k := cwNewKey(t, dir, "Jane Doe")
	cwOrder(t, page, "Jane Doe", "jane@example.com", k.csrPEM, "boss@example.com, JANE@example.com, Admin@Example.com")

	msg := srv.WaitForMail(t, "jane@example.com", "certificate_issued", 15*time.Second)
	notice := srv.WaitForMail(t, "admin@example.com", "certificate_issued_notice", 5*time.Second)
	boss := srv.WaitForMail(t, "boss@example.com", "certificate_issued_notice", 5*time.Second)
	// The recipient's email, in English, names the address, the serial
	// and the end of validity.
	pemBytes := cwAttachment(t, caCtx, srv, msg, ".pem")
	certs := cwPEMCerts(t, string(pemBytes))
	if len(certs) != 1 {
		t.Fatalf("the PEM attachment holds %d certificates", len(certs))
	}
	leaf := certs[0]
	if !leaf.PublicKey.(*rsa.PublicKey).Equal(&k.key.PublicKey) || leaf.EmailAddresses[0] != "jane@example.com" {
		t.Fatalf("the mailed certificate is not the one for the CSR: %s %v", leaf.Subject, leaf.EmailAddresses)
	}
	serial := strings.ToUpper(leaf.SerialNumber.Text(16))
	if msg.Subject != "Your client certificate for jane@example.com has been issued" {
		t.Errorf("subject %q", msg.Subject)
	}
	for _, want := range []string{"jane@example.com", serial, leaf.NotAfter.UTC().Format("2006-01-02"), srv.BaseURL + "/ca",
		"Sent a certificate signing request instead? Then import the certificate together with the private key you made with the request."} {
		if !strings.Contains(msg.Text, want) || !strings.Contains(msg.HTML, want) {
			t.Errorf("the issued email lacks %q:\n%s", want, msg.Text)
		}
	}

	// The .p7b opens with openssl and holds the certificate and the chain
	// up to the root.
	p7 := cwAttachment(t, caCtx, srv, msg, ".p7b")
	p7file := filepath.Join(dir, "mail.p7b")
	if err := os.WriteFile(p7file, p7, 0o600); err != nil {
		t.Fatal(err)
	}
	chain := cwPEMCerts(t, cwOpenSSL(t, nil, "pkcs7", "-inform", "DER", "-print_certs", "-in", p7file))
	if len(chain) != 3 || !chain[0].Equal(leaf) {
		t.Fatalf("the .p7b holds %d certificates (first %v), want the leaf, the issuing CA and the root", len(chain), chain[0].Subject)
	}
	if err := leaf.CheckSignatureFrom(chain[1]); err != nil {
		t.Errorf("the .p7b's second certificate did not issue the leaf: %v", err)
	}
	if err := chain[1].CheckSignatureFrom(chain[2]); err != nil || !bytes.Equal(chain[2].RawIssuer, chain[2].RawSubject) {
		t.Errorf("the .p7b's third certificate is not the root above the issuing CA: %v", err)
	}

	// The notices: one each for the requestor and the additional address,
	// none for Jane, who has her certificate; nobody gets two copies.
	for _, n := range []harness.Message{notice, boss} {
		if n.Subject != "Certificate issued for jane@example.com (order 1)" {
			t.Errorf("notice to %s: subject %q", n.To, n.Subject)
		}
		if len(n.Attachments) != 0 {
			t.Errorf("notice to %s carries attachments %v", n.To, n.Attachments)
		}
	}
	// The outbox rows are written in the issuing transaction: all are there.
	counts := cwMailCounts(srv.Mail(t))
	want := map[string]int{"certificate_issued jane@example.com": 1, "certificate_issued_notice admin@example.com": 1,
		"certificate_issued_notice boss@example.com": 1}
	for k, n := range counts {
		if strings.HasPrefix(k, "certificate_issued") && want[k] != n {
			t.Errorf("%s: %d messages, want %d", k, n, want[k])
		}
	}

	// A second order for the requestor's own address: the "issued" email,
	// and no notice on top of it.
	k2 := cwNewKey(t, t.TempDir(), "Alex Admin")
	cwOrder(t, page, "Alex Admin", "Admin@Example.com", k2.csrPEM, "boss@example.com")
	srv.WaitForMail(t, "admin@example.com", "certificate_issued", 15*time.Second)
	counts = cwMailCounts(srv.Mail(t))
	if counts["certificate_issued admin@example.com"] != 1 || counts["certificate_issued_notice admin@example.com"] != 1 ||
		counts["certificate_issued_notice boss@example.com"] != 2 {
		t.Errorf("after an order for the requestor's own address: %v", counts)
	}

	// The notice's link opens the certificate page for the requestor.
	link := harness.ExtractLink(notice.Text, "/certificates/")
	if link == "" || harness.ExtractLink(notice.HTML, "/certificates/") != link {
		t.Fatalf("notice link text %q html %q", link, harness.ExtractLink(notice.HTML, "/certificates/"))
	}
	if st := harness.Goto(t, page, link); st != 200 {
		t.Fatalf("the notice's link answered %d", st)
	}
	if got := issText(t, page, "#cert-serial"); got != serial {
		t.Errorf("the notice's link shows serial %s, want %s", got, serial)
	}

	// The requestor reads the notice in a browser that is not signed in:
	// the link asks them to sign in first, then shows the certificate.
	fresh, _ := harness.NewPage(t, srv)
	harness.Goto(t, fresh, link)
	if u := fresh.URL(); !strings.HasSuffix(u, "/signin") {
		t.Fatalf("a signed-out requestor following the notice's link is at %s, want the sign-in page", u)
	}
	creds := srv.User(t, harness.RoleAccountAdmin)
	issDo(t, fresh, "email", fresh.Locator("#email").Fill(creds.Email))
	issDo(t, fresh, "password", fresh.Locator("#password").Fill(creds.Password))
	issDo(t, fresh, "sign in", fresh.Locator("form[action='/signin'] button[type=submit]").Click())
	issDo(t, fresh, "after sign-in", fresh.WaitForURL(func(u string) bool { return !strings.HasSuffix(u, "/signin") }))
	if u := fresh.URL(); u != link {
		t.Errorf("after signing in from the notice's link the requestor is at %s, want %s", u, link)
	} else if got := issText(t, fresh, "#cert-serial"); got != serial {
		t.Errorf("after signing in: serial %s, want %s", got, serial)
	}

	// Someone without an account who follows the link (the additional
	// address) sees nothing of the certificate: the sign-in page.
	anon, _ := harness.NewPage(t, srv)
	harness.Goto(t, anon, harness.ExtractLink(boss.Text, "/certificates/"))
	if u := anon.URL(); !strings.Contains(u, "/signin") {
		t.Errorf("anonymous visitor of the notice link is at %s", u)
	}
	if body, _ := anon.Locator("body").InnerText(); strings.Contains(body, serial) {
		t.Errorf("the anonymous visitor sees the serial")
	}
	for _, f := range []string{"pem", "der", "p7b"} {
		st, hdr, body := cwFetch(t, nil, srv, link+"/download/"+f)
		if st/100 != 3 || bytes.Contains(body, []byte("BEGIN CERTIFICATE")) || bytes.Contains(body, leaf.Raw) {
			t.Errorf("anonymous download %s: %d %s", f, st, hdr.Get("Content-Type"))
		}
	}
}

// TestCertWalkIssuedMailDutch: a requestor whose browser asks for Dutch
// orders (the pages are Dutch; the account never chose a language). The
// recipient's email and the notice are in Dutch.
func TestCertWalkIssuedMailDutch(t *testing.T) {
	dir := t.TempDir()
	srv, page, _ := cwServer(t, harness.WithLocale("nl-NL"))
	caCtx := cwCASession(t, srv)

	k := cwNewKey(t, dir, "Jan Jansen")
	cwOrder(t, page, "Jan Jansen", "jan@example.com", k.csrPEM, "")
	if lang, _ := page.Locator("html").GetAttribute("lang"); lang != "nl" {
		t.Fatalf("the order page is not in Dutch: lang=%q", lang)
	}
	msg := srv.WaitForMail(t, "jan@example.com", "certificate_issued", 15*time.Second)
	notice := srv.WaitForMail(t, "admin@example.com", "certificate_issued_notice", 5*time.Second)
	if msg.Subject != "Uw clientcertificaat voor jan@example.com is uitgegeven" {
		t.Errorf("the recipient's email of a Dutch order: subject %q\n%s", msg.Subject, msg.Text)
	}
	if notice.Subject != "Certificaat uitgegeven voor jan@example.com (bestelling 1)" {
		t.Errorf("the requestor's notice of a Dutch order: subject %q\n%s", notice.Subject, notice.Text)
	}
	leaf := cwPEMCerts(t, string(cwAttachment(t, caCtx, srv, msg, ".pem")))[0]
	serial := strings.ToUpper(leaf.SerialNumber.Text(16))
	for _, want := range []string{"Hallo,", "het S/MIME-certificaat voor jan@example.com is uitgegeven",
		"geldig tot " + leaf.NotAfter.UTC().Format("2006-01-02"), "serienummer " + serial, "PKCS#7", "CA-certificaten ophalen",
		`Hebt u uw sleutel gemaakt op de pagina "Uw certificaat maken"? Importeer dan het met een wachtwoord beveiligde .p12-bestand`,
		"Hebt u zelf een certificaataanvraag gestuurd? Importeer het certificaat dan samen met de privésleutel"} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("the Dutch issued email lacks %q:\n%s", want, msg.Text)
		}
	}
	for _, want := range []string{"Het S/MIME-certificaat voor jan@example.com van bestelling 1 is uitgegeven", "Certificaat bekijken"} {
		if !strings.Contains(notice.Text, want) {
			t.Errorf("the Dutch notice lacks %q:\n%s", want, notice.Text)
		}
	}
	for _, m := range []harness.Message{msg, notice} {
		if !strings.Contains(m.HTML, `<html lang="nl">`) {
			t.Errorf("%s: the HTML part is not marked Dutch", m.Kind)
		}
	}
	if len(msg.Attachments) != 2 {
		t.Errorf("attachments %v", msg.Attachments)
	}
	// The notice's link opens the Dutch certificate page.
	harness.Goto(t, page, harness.ExtractLink(notice.Text, "/certificates/"))
	if got := issText(t, page, "#cert-serial"); got != serial {
		t.Errorf("the notice's link shows serial %s, want %s", got, serial)
	}
}

// cwProps reads the certificate page's <dl class="props"> as label -> text.
func cwProps(t *testing.T, page playwright.Page) map[string]string {
	t.Helper()
	v, err := page.Evaluate(`() => {
		const out = {};
		for (const dt of document.querySelectorAll("dl.props > dt")) {
			const dd = dt.nextElementSibling;
			out[dt.textContent.trim()] = dd ? dd.innerText.trim() : "";
		}
		return out;
	}`)
	issDo(t, page, "props", err)
	out := map[string]string{}
	for k, x := range v.(map[string]any) {
		out[k] = fmt.Sprint(x)
	}
	return out
}

// cwAxe fails the test on axe violations of moderate impact or worse.
func cwAxe(t *testing.T, page playwright.Page, what string) {
	t.Helper()
	if vs := harness.AtLeast(harness.Axe(t, page), "moderate"); len(vs) > 0 {
		t.Errorf("axe on %s (%s):\n%s", what, page.URL(), harness.FormatViolations(vs))
	}
}

// cwDownload clicks the link whose href ends with suffix and returns the
// downloaded bytes and the suggested file name.
func cwDownload(t *testing.T, page playwright.Page, suffix string) ([]byte, string) {
	t.Helper()
	dl, err := page.ExpectDownload(func() error { return page.Locator("a[href$='" + suffix + "']").Click() })
	issDo(t, page, "download "+suffix, err)
	path, err := dl.Path()
	issDo(t, page, "download path", err)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, dl.SuggestedFilename()
}

// TestCertWalkPages: the certificate list and page as the requestor sees
// them, in English and Dutch: the empty state before the first order, then
// subject, addresses, serial, validity, SHA-256 fingerprint, profile and
// status against the certificate itself; the three downloads; axe.
func TestCertWalkPages(t *testing.T) {
	dir := t.TempDir()
	srv, page, ctx := cwServer(t)

	// No certificates yet: the list says what will come and how.
	for lang, want := range map[string]string{"en": "No certificates yet. When an order's validations are complete",
		"nl": "Nog geen certificaten. Zodra de validaties van een bestelling klaar zijn"} {
		harness.Goto(t, page, "/lang/"+lang+"?next=/certificates")
		if empty := issText(t, page, ".empty"); !strings.Contains(empty, want) {
			t.Errorf("%s: the empty list says %q", lang, empty)
		}
		if n, _ := page.Locator("table").Count(); n != 0 {
			t.Errorf("%s: an empty list shows a table", lang)
		}
		if href, _ := page.Locator(".empty a").GetAttribute("href"); href != "/orders/new" {
			t.Errorf("%s: the empty list links %q, want the order form", lang, href)
		}
		cwAxe(t, page, lang+" empty list")
	}
	harness.Goto(t, page, "/lang/en?next=/dashboard")

	k := cwNewKey(t, dir, "Jane Doe")
	cwOrder(t, page, "Jane Doe", "jane@example.com", k.csrPEM, "")

	// The issued certificate, as the CA published it (the recipient's mail).
	caPage, caCtx := harness.NewPage(t, srv)
	harness.SignInAs(t, caPage, srv, harness.RoleCAAdmin)
	leaf := cwPEMCerts(t, string(cwAttachment(t, caCtx, srv, srv.WaitForMail(t, "jane@example.com", "certificate_issued", 15*time.Second), ".pem")))[0]
	serial := strings.ToUpper(leaf.SerialNumber.Text(16))
	notAfter, notBefore := leaf.NotAfter.UTC().Format("2006-01-02 15:04 UTC"), leaf.NotBefore.UTC().Format("2006-01-02 15:04 UTC")

	// The list: one row with the certificate's subject, address, serial,
	// end of validity and status, linking its page.
	harness.Goto(t, page, "/certificates")
	row := page.Locator("tr[data-certificate]")
	if n, _ := row.Count(); n != 1 {
		t.Fatalf("%d rows in the list", n)
	}
	cells, err := row.Locator("td").AllInnerTexts()
	issDo(t, page, "cells", err)
	if len(cells) != 5 || !strings.Contains(cells[0], "CN=Jane Doe") || !strings.Contains(cells[0], "O=Example Corp B.V.") ||
		cells[1] != "jane@example.com" || cells[2] != serial || cells[3] != notAfter || cells[4] != "Valid" {
		t.Errorf("list row %q; want subject, jane@example.com, %s, %s, Valid", cells, serial, notAfter)
	}
	cwAxe(t, page, "en list")
	issDo(t, page, "open", row.Locator("a").First().Click())
	issDo(t, page, "detail", page.WaitForURL(regexp.MustCompile(`/certificates/\d+$`)))
	certURL := page.URL()
	certPath := strings.TrimPrefix(certURL, srv.BaseURL)
	cwAxe(t, page, "en detail")

	// The downloads, clicked on the page: the certificate's own bytes, and
	// the .p7b with the chain up to the root.
	der, derName := cwDownload(t, page, "/download/der")
	pemB, pemName := cwDownload(t, page, "/download/pem")
	p7, p7Name := cwDownload(t, page, "/download/p7b")
	if !bytes.Equal(der, leaf.Raw) {
		t.Errorf("the DER download is not the issued certificate")
	}
	if got := cwPEMCerts(t, string(pemB)); len(got) != 1 || !got[0].Equal(leaf) {
		t.Errorf("the PEM download is not the issued certificate")
	}
	p7file := filepath.Join(dir, "page.p7b")
	if err := os.WriteFile(p7file, p7, 0o600); err != nil {
		t.Fatal(err)
	}
	chain := cwPEMCerts(t, cwOpenSSL(t, nil, "pkcs7", "-inform", "DER", "-print_certs", "-in", p7file))
	if len(chain) != 3 || !chain[0].Equal(leaf) || leaf.CheckSignatureFrom(chain[1]) != nil || chain[1].CheckSignatureFrom(chain[2]) != nil {
		t.Errorf("the .p7b download holds %d certificates, want the leaf, the issuing CA and the root", len(chain))
	}
	base := "certificate-" + strings.ToLower(serial)
	for _, d := range []struct{ format, name, wantName, ctype string }{
		{"pem", pemName, base + ".pem", "application/x-pem-file"},
		{"der", derName, base + ".cer", "application/pkix-cert"},
		{"p7b", p7Name, base + ".p7b", "application/pkcs7-mime"},
	} {
		st, hdr, _ := cwFetch(t, ctx, srv, certURL+"/download/"+d.format)
		if d.name != d.wantName || st != 200 || hdr.Get("Content-Type") != d.ctype ||
			hdr.Get("Content-Disposition") != `attachment; filename="`+d.wantName+`"` {
			t.Errorf("%s download: %d, file %q, Content-Type %q, Content-Disposition %q", d.format, st, d.name,
				hdr.Get("Content-Type"), hdr.Get("Content-Disposition"))
		}
	}

	// The page's facts against the certificate, in both languages.
	sum := cwSHA256(der)
	for _, c := range []struct {
		lang                                                             string
		status, subject, emails, serial, from, until, fp, profile, order string
		wantStatus, wantProfile                                          string
	}{
		{"en", "Status", "Subject", "Email addresses", "Serial number", "Valid from", "Valid until", "SHA-256 fingerprint", "Profile", "Order",
			"Valid", "sponsor-validated strict (2.23.140.1.5.3.3)"},
		{"nl", "Status", "Onderwerp", "E-mailadressen", "Serienummer", "Geldig vanaf", "Geldig tot", "SHA-256-vingerafdruk", "Profiel", "Bestelling",
			"Geldig", "sponsor-gevalideerd, generatie strikt (2.23.140.1.5.3.3)"},
	} {
		harness.Goto(t, page, "/lang/"+c.lang+"?next="+certPath)
		props := cwProps(t, page)
		if props[c.status] != c.wantStatus || !strings.Contains(props[c.subject], "CN=Jane Doe") ||
			!strings.Contains(props[c.subject], "O=Example Corp B.V.") || props[c.emails] != "jane@example.com" ||
			props[c.serial] != serial || props[c.from] != notBefore || props[c.until] != notAfter ||
			!cwHexEq(props[c.fp], sum) || props[c.profile] != c.wantProfile || props[c.order] != "#1" {
			t.Errorf("%s certificate page %q; want serial %s, %s - %s, SHA-256 %s", c.lang, props, serial, notBefore, notAfter, sum)
		}
		cwAxe(t, page, c.lang+" detail")
		harness.Goto(t, page, "/certificates")
		cwAxe(t, page, c.lang+" list")
	}
	var policy bool
	for _, p := range leaf.Policies {
		policy = policy || p.String() == "2.23.140.1.5.3.3"
	}
	if !policy {
		t.Errorf("the certificate lacks the policy the page shows: %v", leaf.Policies)
	}
}

// cwWriteCerts writes certificates as PEM to dir/name and returns the path.
func cwWriteCerts(t *testing.T, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCertWalkRevoke: the requestor revokes from the certificate page.
// The reasons offered are those a subscriber may give; a revoke without a
// reason is refused where the requestor sees it; the confirmation names
// what happens; afterwards the list, the page and the order page say
// revoked, openssl ocsp at the certificate's AIA says revoked with the
// reason, and the CRL at its distribution point lists the serial with it.
func TestCertWalkRevoke(t *testing.T) {
	dir := t.TempDir()
	srv, page, _ := cwServer(t)
	caCtx := cwCASession(t, srv)

	k := cwNewKey(t, dir, "Jane Doe")
	cwOrder(t, page, "Jane Doe", "jane@example.com", k.csrPEM, "")
	orderPath := strings.TrimPrefix(page.URL(), srv.BaseURL)
	leaf := cwPEMCerts(t, string(cwAttachment(t, caCtx, srv, srv.WaitForMail(t, "jane@example.com", "certificate_issued", 15*time.Second), ".pem")))[0]
	issDo(t, page, "view certificate", page.Locator("tr[data-recipient='jane@example.com'] a[href^='/certificates/']").Click())
	issDo(t, page, "certificate page", page.WaitForURL(regexp.MustCompile(`/certificates/\d+$`)))
	certPath := strings.TrimPrefix(page.URL(), srv.BaseURL)

	// The reasons: the RFC 5280 reasons a subscriber may give (SBR
	// 4.9.1.1, 7.2.2; privilegeWithdrawn is the CA's own, certificateHold
	// is never used), after a "choose" placeholder.
	opts, err := page.Evaluate(`() => [...document.querySelectorAll("#reason option")].map(o => o.value)`)
	issDo(t, page, "options", err)
	if got := fmt.Sprint(opts); got != "[ unspecified keyCompromise affiliationChanged superseded cessationOfOperation]" {
		t.Errorf("revocation reasons offered: %s", got)
	}

	var dialogs []string
	page.OnDialog(func(d playwright.Dialog) { dialogs = append(dialogs, d.Message()); _ = d.Accept() })

	// No reason chosen: refused (422), the certificate still valid, and the
	// refusal where the requestor sees it: the reason field, scrolled into
	// view and focused, its error announced with it. The page comes back
	// at its top, and the form is below the fold of a 720-pixel window.
	resp, err := page.ExpectResponse(regexp.MustCompile(`/revoke$`), func() error {
		return page.Locator("form[action$='/revoke'] button[type=submit]").Click()
	})
	issDo(t, page, "revoke without reason", err)
	issDo(t, page, "load", page.WaitForLoadState())
	if resp.Status() != 422 || issText(t, page, "#cert-status") != "Valid" {
		t.Fatalf("revoke without a reason: %d, status %q", resp.Status(), issText(t, page, "#cert-status"))
	}
	if e := issText(t, page, "#reason-error"); e != "Choose a revocation reason." {
		t.Errorf("reason error %q", e)
	}
	state, err := page.Evaluate(`() => {
		const e = document.querySelector("#reason-error").getBoundingClientRect();
		const sel = document.querySelector("#reason");
		return [e.top >= 0 && e.bottom <= window.innerHeight, document.activeElement === sel,
			sel.getAttribute("aria-invalid") === "true", (sel.getAttribute("aria-describedby") || "").split(" ").includes("reason-error")].join(",");
	}`)
	issDo(t, page, "error state", err)
	if state != "true,true,true,true" {
		t.Errorf("the refusal is not where the requestor sees it (error in view, field focused, aria-invalid, described by the error): %v", state)
	}
	cwAxe(t, page, "en refused revocation")

	// Revoke for key compromise; the browser asks first.
	_, err = page.Locator("#reason").SelectOption(playwright.SelectOptionValues{Values: &[]string{"keyCompromise"}})
	issDo(t, page, "reason", err)
	dialogs = nil
	issDo(t, page, "revoke", page.Locator("form[action$='/revoke'] button[type=submit]").Click())
	issDo(t, page, "back on the page", page.WaitForURL(regexp.MustCompile(`/certificates/\d+$`)))
	if len(dialogs) != 1 || dialogs[0] != "Revoke this certificate? This cannot be undone." {
		t.Errorf("confirmation dialogs %q", dialogs)
	}
	if f := issText(t, page, ".flash"); f != "The certificate has been revoked." {
		t.Errorf("flash %q", f)
	}
	if st := issText(t, page, "#cert-status"); st != "Revoked" {
		t.Errorf("status on the page %q", st)
	}
	if n := issText(t, page, "#revoked-notice"); !strings.Contains(n, "reason: Key compromise") {
		t.Errorf("revoked notice %q", n)
	}
	if n, _ := page.Locator("form[action$='/revoke'], #revoke-who").Count(); n != 0 {
		t.Errorf("a revoked certificate still offers revocation or says who may revoke it")
	}
	cwAxe(t, page, "en revoked certificate")
	harness.Goto(t, page, "/certificates")
	if st := issText(t, page, "tr[data-certificate] .badge"); st != "Revoked" {
		t.Errorf("status in the list %q", st)
	}
	harness.Goto(t, page, orderPath)
	if st := issText(t, page, "tr[data-recipient='jane@example.com'] .badge"); st != "Certificate revoked" {
		t.Errorf("status on the order page %q", st)
	}
	harness.Goto(t, page, "/lang/nl?next="+certPath)
	if st := issText(t, page, "#cert-status"); st != "Ingetrokken" {
		t.Errorf("Dutch status on the page %q", st)
	}
	cwAxe(t, page, "nl revoked certificate")

	// openssl ocsp at the certificate's OCSP URL, with the issuer from its
	// caIssuers URL, verified up to the root: revoked, keyCompromise.
	if len(leaf.OCSPServer) != 1 || len(leaf.IssuingCertificateURL) != 1 || len(leaf.CRLDistributionPoints) != 1 {
		t.Fatalf("AIA %v %v, CRL DP %v", leaf.OCSPServer, leaf.IssuingCertificateURL, leaf.CRLDistributionPoints)
	}
	issuerDER, _ := issGet(t, nil, srv, leaf.IssuingCertificateURL[0])
	issuer, err := x509.ParseCertificate(issuerDER)
	if err != nil {
		t.Fatal(err)
	}
	rootDER, _ := issGet(t, nil, srv, issuer.IssuingCertificateURL[0])
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	leafFile := cwWriteCerts(t, dir, "leaf.pem", leaf)
	issuerFile := cwWriteCerts(t, dir, "issuing.pem", issuer)
	rootFile := cwWriteCerts(t, dir, "root.pem", root)
	out := cwOpenSSL(t, nil, "ocsp", "-issuer", issuerFile, "-cert", leafFile, "-url", leaf.OCSPServer[0],
		"-CAfile", rootFile, "-resp_text")
	if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, leafFile+": revoked") ||
		!strings.Contains(out, "Reason: keyCompromise") {
		t.Errorf("openssl ocsp:\n%s", out)
	}

	// The CRL at the distribution point: signed by the issuing CA, lists
	// the serial with the reason.
	crlDER, _ := issGet(t, nil, srv, leaf.CRLDistributionPoints[0])
	crlFile := filepath.Join(dir, "issuing.crl")
	if err := os.WriteFile(crlFile, crlDER, 0o600); err != nil {
		t.Fatal(err)
	}
	out = cwOpenSSL(t, nil, "crl", "-inform", "DER", "-in", crlFile, "-CAfile", cwWriteCerts(t, dir, "chain.pem", issuer, root), "-noout", "-text")
	serial := strings.ToUpper(hex.EncodeToString(leaf.SerialNumber.Bytes())) // openssl's form: whole bytes
	i := strings.Index(out, "Serial Number: "+serial)
	if !strings.Contains(out, "verify OK") || i < 0 || !strings.Contains(out[i:], "Key Compromise") {
		t.Errorf("openssl crl (serial %s):\n%s", serial, out)
	}

	// A second certificate, revoked in Dutch without a reason: the
	// confirmation and the result in Dutch; OCSP says revoked; the CRL
	// lists it without a reasonCode (SBR 7.2.2: unspecified is omitted).
	k2 := cwNewKey(t, t.TempDir(), "Jan Jansen")
	cwOrder(t, page, "Jan Jansen", "jan@example.com", k2.csrPEM, "")
	leaf2 := cwPEMCerts(t, string(cwAttachment(t, caCtx, srv, srv.WaitForMail(t, "jan@example.com", "certificate_issued", 15*time.Second), ".pem")))[0]
	issDo(t, page, "view certificate", page.Locator("tr[data-recipient='jan@example.com'] a[href^='/certificates/']").Click())
	issDo(t, page, "certificate page", page.WaitForURL(regexp.MustCompile(`/certificates/\d+$`)))
	labels, err := page.Evaluate(`() => [...document.querySelectorAll("#reason option")].map(o => o.textContent.trim()).join("|")`)
	issDo(t, page, "labels", err)
	if labels != "Kies een reden|Geen reden opgegeven|Sleutel gecompromitteerd: de privésleutel is mogelijk bij iemand anders bekend|"+
		"Gegevens gewijzigd: de naam of organisatie klopt niet meer|Vervangen door een nieuw certificaat|"+
		"Buiten gebruik: het adres of certificaat wordt niet meer gebruikt" {
		t.Errorf("Dutch reasons %q", labels)
	}
	_, err = page.Locator("#reason").SelectOption(playwright.SelectOptionValues{Values: &[]string{"unspecified"}})
	issDo(t, page, "reason", err)
	dialogs = nil
	issDo(t, page, "revoke", page.Locator("form[action$='/revoke'] button[type=submit]").Click())
	issDo(t, page, "back on the page", page.WaitForURL(regexp.MustCompile(`/certificates/\d+$`)))
	if len(dialogs) != 1 || dialogs[0] != "Dit certificaat intrekken? Dit kan niet ongedaan worden gemaakt." {
		t.Errorf("Dutch confirmation dialogs %q", dialogs)
	}
	if f, st, n := issText(t, page, ".flash"), issText(t, page, "#cert-status"), issText(t, page, "#revoked-notice"); f != "Het certificaat is ingetrokken." ||
		st != "Ingetrokken" || !strings.Contains(n, "reden: Geen reden opgegeven") {
		t.Errorf("after revoking in Dutch: flash %q, status %q, notice %q", f, st, n)
	}
	leaf2File := cwWriteCerts(t, dir, "leaf2.pem", leaf2)
	out = cwOpenSSL(t, nil, "ocsp", "-issuer", issuerFile, "-cert", leaf2File, "-url", leaf2.OCSPServer[0], "-CAfile", rootFile)
	if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, leaf2File+": revoked") {
		t.Errorf("openssl ocsp of the second certificate:\n%s", out)
	}
	crlDER, _ = issGet(t, nil, srv, leaf2.CRLDistributionPoints[0])
	crl, err := x509.ParseRevocationList(crlDER)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(leaf2.SerialNumber) == 0 {
			found = true
			for _, x := range e.Extensions {
				if x.Id.String() == "2.5.29.21" {
					t.Errorf("the CRL entry of a revocation without a reason has a reasonCode %x", x.Value)
				}
			}
		}
	}
	if !found || len(crl.RevokedCertificateEntries) != 2 {
		t.Errorf("the CRL lists %d certificates; the second one listed: %v", len(crl.RevokedCertificateEntries), found)
	}
}

// TestCertWalkCMS: a certificate ordered with a CSR of a key the test
// made works for S/MIME: openssl cms signs with it and verifies against
// the root (issuing CA untrusted, purpose smimesign), and encrypts to it
// and decrypts with the key. The chain comes from the .p7b download.
func TestCertWalkCMS(t *testing.T) {
	dir := t.TempDir()
	srv, page, ctx := cwServer(t)

	k := cwNewKey(t, dir, "Jane Doe")
	cwOrder(t, page, "Jane Doe", "jane@example.com", k.csrPEM, "")
	issDo(t, page, "view certificate", page.Locator("tr[data-recipient='jane@example.com'] a[href^='/certificates/']").Click())
	issDo(t, page, "certificate page", page.WaitForURL(regexp.MustCompile(`/certificates/\d+$`)))
	_, _, p7 := cwFetch(t, ctx, srv, page.URL()+"/download/p7b")
	p7file := filepath.Join(dir, "chain.p7b")
	if err := os.WriteFile(p7file, p7, 0o600); err != nil {
		t.Fatal(err)
	}
	chain := cwPEMCerts(t, cwOpenSSL(t, nil, "pkcs7", "-inform", "DER", "-print_certs", "-in", p7file))
	if len(chain) != 3 {
		t.Fatalf("the .p7b holds %d certificates", len(chain))
	}
	leafFile := cwWriteCerts(t, dir, "leaf.pem", chain[0])
	issuingFile := cwWriteCerts(t, dir, "issuing.pem", chain[1])
	rootFile := cwWriteCerts(t, dir, "root.pem", chain[2])
	msgFile := filepath.Join(dir, "msg.txt")
	body := "Hello Jane,\r\nthis message is signed and encrypted.\r\n"
	if err := os.WriteFile(msgFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	// Signed as a mail client does, with the issuing CA in the message;
	// verified against the root alone. Where openssl's cms knows
	// -untrusted (3.2 and later), the issuing CA is passed that way too.
	signed := filepath.Join(dir, "signed.eml")
	cwOpenSSL(t, nil, "cms", "-sign", "-in", msgFile, "-signer", leafFile, "-inkey", k.keyFile, "-certfile", issuingFile, "-out", signed)
	verified := filepath.Join(dir, "verified.txt")
	args := []string{"cms", "-verify", "-in", signed, "-CAfile", rootFile, "-purpose", "smimesign", "-out", verified}
	if help, _ := exec.Command("openssl", "cms", "-help").CombinedOutput(); bytes.Contains(help, []byte("-untrusted")) {
		args = append(args, "-untrusted", issuingFile)
	}
	out := cwOpenSSL(t, nil, args...)
	if got, _ := os.ReadFile(verified); !strings.Contains(out, "Verification successful") || string(got) != body {
		t.Errorf("openssl cms -verify: %s\n%q", out, got)
	}

	enc := filepath.Join(dir, "enc.eml")
	cwOpenSSL(t, nil, "cms", "-encrypt", "-aes256", "-in", msgFile, "-out", enc, leafFile)
	dec := filepath.Join(dir, "dec.txt")
	cwOpenSSL(t, nil, "cms", "-decrypt", "-in", enc, "-recip", leafFile, "-inkey", k.keyFile, "-out", dec)
	if got, _ := os.ReadFile(dec); string(got) != body {
		t.Errorf("openssl cms -decrypt gave %q", got)
	}
}

// TestCertWalkKeyGenIssuedMail: the "issued" email of a certificate made
// on the KeyGen page tells the recipient to import the .p12 file they
// downloaded there (it told them to import the certificate "together with
// the private key you made with the certificate signing request", which
// they never saw); its PEM is the certificate in that file; the requestor
// gets one notice and the recipient no second copy.
func TestCertWalkKeyGenIssuedMail(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Env: []string{"CERTDESK_DNS_RESOLVER=" + issEmptyDNS(t)}})
	kgRequireWired(t, srv)
	admin, _ := harness.NewPage(t, srv)
	harness.SignInAs(t, admin, srv, harness.RoleAccountAdmin)
	caPage, caCtx := harness.NewPage(t, srv)
	harness.SignInAs(t, caPage, srv, harness.RoleCAAdmin)
	kgOrder(t, admin, "Jane Doe", "jane@example.com")
	link := kgLink(t, srv, "jane@example.com")
	page, _ := harness.NewPage(t, srv)
	harness.Goto(t, page, link)
	kgWaitReady(t, page)
	const password = "correct horse battery staple"
	_, p12 := kgGenerateAndDownload(t, page, password, "modern")
	_, inFile, _, err := pkcs12.DecodeChain(p12, password)
	if err != nil {
		t.Fatal(err)
	}

	msg := srv.WaitForMail(t, "jane@example.com", "certificate_issued", 15*time.Second)
	if got := cwPEMCerts(t, string(cwAttachment(t, caCtx, srv, msg, ".pem"))); len(got) != 1 || !got[0].Equal(inFile) {
		t.Errorf("the mailed PEM is not the certificate in the downloaded .p12")
	}
	for _, want := range []string{`Made your key on the "Create your certificate" page? Then import the password-protected .p12 file you downloaded there`,
		"Neither file holds a private key."} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("the issued email of a KeyGen certificate lacks %q:\n%s", want, msg.Text)
		}
	}
	counts := cwMailCounts(srv.Mail(t))
	if counts["certificate_issued jane@example.com"] != 1 || counts["certificate_issued_notice admin@example.com"] != 1 ||
		counts["certificate_issued_notice jane@example.com"] != 0 {
		t.Errorf("mail counts %v", counts)
	}
}

// cwAddUser adds a user with `certdesk user add` on the server's data
// directory and returns the password it printed.
func cwAddUser(t *testing.T, srv *harness.Server, email, role, account string) string {
	t.Helper()
	out, err := exec.Command(harness.BuildBinary(t), "user", "add", "--data-dir", srv.DataDir, "--email", email,
		"--name", "Test "+role, "--role", role, "--account", account).CombinedOutput()
	if err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`password: (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("user add printed no password: %s", out)
	}
	return string(m[1])
}

// TestCertWalkOtherUsers: a user of the same account who did not order
// sees the certificate and downloads it but is not offered revocation (and
// is refused when posting it); an administrator of another account sees
// an empty list, and the certificate's page and downloads are "not found".
func TestCertWalkOtherUsers(t *testing.T) {
	dir := t.TempDir()
	srv, page, _ := cwServer(t)
	k := cwNewKey(t, dir, "Jane Doe")
	cwOrder(t, page, "Jane Doe", "jane@example.com", k.csrPEM, "")
	issDo(t, page, "view certificate", page.Locator("tr[data-recipient='jane@example.com'] a[href^='/certificates/']").Click())
	issDo(t, page, "certificate page", page.WaitForURL(regexp.MustCompile(`/certificates/\d+$`)))
	certPath := strings.TrimPrefix(page.URL(), srv.BaseURL)
	serial := issText(t, page, "#cert-serial")

	colleague, cctx := harness.NewPage(t, srv)
	harness.SignIn(t, colleague, srv, "colleague@example.com", cwAddUser(t, srv, "colleague@example.com", "user", "Example Corp"))
	harness.Goto(t, colleague, certPath)
	if got := issText(t, colleague, "#cert-serial"); got != serial {
		t.Errorf("the colleague sees serial %q", got)
	}
	if n, _ := colleague.Locator("form[action$='/revoke']").Count(); n != 0 {
		t.Errorf("a user who did not order is offered revocation")
	}
	// ... and is told who can (the list says "open one to download it or
	// to revoke it"; a key compromise should not end at a page without a
	// way forward).
	if n, _ := colleague.Locator("#revoke-who").Count(); n == 0 {
		t.Errorf("the certificate page does not tell a user who cannot revoke who can")
	} else if got := issText(t, colleague, "#revoke-who"); got != "Only the requestor or an account administrator can revoke this certificate." {
		t.Errorf("revoke-who %q", got)
	}
	if st, _, _ := cwFetch(t, cctx, srv, srv.URL(certPath+"/download/pem")); st != 200 {
		t.Errorf("the colleague's download: %d", st)
	}
	cwAxe(t, colleague, "the colleague's certificate page")
	st, err := colleague.Evaluate(`async (path) => {
		const csrf = document.querySelector("input[name=csrf]").value;
		const r = await fetch(path + "/revoke", {method: "POST", body: new URLSearchParams({csrf, reason: "superseded"})});
		return r.status;
	}`, certPath)
	issDo(t, colleague, "colleague revoke", err)
	harness.Goto(t, page, certPath)
	if fmt.Sprint(st) != "403" || issText(t, page, "#cert-status") != "Valid" {
		t.Errorf("the colleague's revoke: %v, status now %q", st, issText(t, page, "#cert-status"))
	}

	other, octx := harness.NewPage(t, srv, harness.WithLocale("nl-NL"))
	harness.SignIn(t, other, srv, "boss@other.example", cwAddUser(t, srv, "boss@other.example", "account_admin", "Other BV"))
	harness.Goto(t, other, "/certificates")
	if n, _ := other.Locator("tr[data-certificate]").Count(); n != 0 {
		t.Errorf("another account lists %d certificates", n)
	}
	if e := issText(t, other, ".empty"); !strings.HasPrefix(e, "Nog geen certificaten.") {
		t.Errorf("another account's empty list: %q", e)
	}
	if st := harness.Goto(t, other, certPath); st != 404 {
		t.Errorf("another account's view of the certificate page: %d", st)
	}
	if body, _ := other.Locator("body").InnerText(); strings.Contains(body, serial) || strings.Contains(body, "jane@example.com") {
		t.Errorf("another account sees the certificate")
	}
	cwAxe(t, other, "the not-found page in Dutch")
	for _, f := range []string{"pem", "der", "p7b"} {
		if st, _, body := cwFetch(t, octx, srv, srv.URL(certPath+"/download/"+f)); st != 404 || bytes.Contains(body, []byte("CERTIFICATE")) {
			t.Errorf("another account's %s download: %d", f, st)
		}
	}
}

// cwMIMEPart is one attachment of a raw message: its Content-Type header
// as sent and its decoded bytes.
type cwMIMEPart struct {
	ContentType string
	Data        []byte
}

// cwAttachments takes a raw message apart and returns its attachments by
// file name.
func cwAttachments(t *testing.T, raw []byte) map[string]cwMIMEPart {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]cwMIMEPart{}
	var walk func(ctype string, body io.Reader)
	walk = func(ctype string, body io.Reader) {
		mt, params, err := mime.ParseMediaType(ctype)
		if err != nil {
			t.Fatalf("Content-Type %q: %v", ctype, err)
		}
		if !strings.HasPrefix(mt, "multipart/") {
			return
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart() // undoes quoted-printable, not base64
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ct := p.Header.Get("Content-Type")
			if p.FileName() == "" {
				walk(ct, p)
				continue
			}
			b, _ := io.ReadAll(p)
			if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
				if b, err = base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(b))); err != nil {
					t.Fatal(err)
				}
			}
			out[p.FileName()] = cwMIMEPart{ContentType: ct, Data: b}
		}
	}
	walk(msg.Header.Get("Content-Type"), msg.Body)
	return out
}

// TestCertWalkIssuedMailOverSMTP: the "issued" email as a mail server
// receives it. Its PEM attachment is the certificate and its .p7b opens
// with openssl pkcs7 with the chain; the .p7b is labelled a certs-only
// message (RFC 8551 3.2.2, "application/pkcs7-mime; smime-type=certs-only"):
// a bare application/pkcs7-mime part is an encrypted message to mail
// clients (Thunderbird then ignores "attachment" and tries to decrypt it,
// unless smime-type says certs-only or the name ends in .p7c). The
// requestor's notice arrives once, with the certificate page's link.
func TestCertWalkIssuedMailOverSMTP(t *testing.T) {
	dir := t.TempDir()
	smtpSrv := harness.StartSMTPServer(t)
	srv := harness.StartServer(t, harness.ServerOptions{Args: []string{"--smtp-url", smtpSrv.URL()},
		Env: []string{"CERTDESK_DNS_RESOLVER=" + issEmptyDNS(t)}})
	page, _ := harness.NewPage(t, srv)
	harness.SignInAs(t, page, srv, harness.RoleAccountAdmin)
	k := cwNewKey(t, dir, "Jane Doe")
	cwOrder(t, page, "Jane Doe", "jane@example.com", k.csrPEM, "")

	m := smtpSrv.WaitForMessage(t, "jane@example.com", 15*time.Second)
	if m.Subject != "Your client certificate for jane@example.com has been issued" {
		t.Errorf("subject %q", m.Subject)
	}
	att := cwAttachments(t, m.Data)
	pemPart, p7Part := att["jane_example.com.pem"], att["jane_example.com.p7b"]
	if len(att) != 2 || pemPart.Data == nil || p7Part.Data == nil {
		t.Fatalf("attachments %v", att)
	}
	certs := cwPEMCerts(t, string(pemPart.Data))
	if len(certs) != 1 || !certs[0].PublicKey.(*rsa.PublicKey).Equal(&k.key.PublicKey) {
		t.Fatalf("the PEM attachment holds %d certificates, not the one for the CSR", len(certs))
	}
	p7file := filepath.Join(dir, "smtp.p7b")
	if err := os.WriteFile(p7file, p7Part.Data, 0o600); err != nil {
		t.Fatal(err)
	}
	chain := cwPEMCerts(t, cwOpenSSL(t, nil, "pkcs7", "-inform", "DER", "-print_certs", "-in", p7file))
	if len(chain) != 3 || !chain[0].Equal(certs[0]) {
		t.Errorf("the .p7b holds %d certificates", len(chain))
	}
	if mt, params, _ := mime.ParseMediaType(pemPart.ContentType); mt != "application/x-pem-file" {
		t.Errorf("the PEM attachment's Content-Type %q (%v)", pemPart.ContentType, params)
	}
	if mt, params, _ := mime.ParseMediaType(p7Part.ContentType); mt != "application/pkcs7-mime" || params["smime-type"] != "certs-only" {
		t.Errorf("the .p7b attachment's Content-Type %q: mail clients take it for an encrypted message", p7Part.ContentType)
	}

	n := smtpSrv.WaitForMessage(t, "admin@example.com", 5*time.Second)
	if n.Subject != "Certificate issued for jane@example.com (order 1)" || len(n.Attachments) != 0 ||
		!strings.Contains(n.Text, srv.BaseURL+"/certificates/") {
		t.Errorf("notice: %q %v\n%s", n.Subject, n.Attachments, n.Text)
	}
	var toJane, toAdmin int
	for _, msg := range smtpSrv.Messages() {
		for _, to := range msg.To {
			switch to {
			case "jane@example.com":
				toJane++
			case "admin@example.com":
				toAdmin++
			}
		}
	}
	if toJane != 1 || toAdmin != 1 {
		t.Errorf("delivered to jane %d times, to the requestor %d times", toJane, toAdmin)
	}
}
