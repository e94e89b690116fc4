package e2e

// The KeyGen page used the way a clumsy or hostile recipient would (issue
// 6 audit). Each test here failed before the fix it comes with; the flows
// also check, on the way, what already behaved (double clicks, the
// compatible encoding with openssl -legacy, non-ASCII passwords).

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxschmitt/playwright-go"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"certdesk/e2e/harness"
)

// kgeLinks starts a server, orders one KeyGen certificate per address on
// the demo organization through the API and returns the emailed links.
func kgeLinks(t *testing.T, emails ...string) (*harness.Server, map[string]string) {
	t.Helper()
	srv := harness.StartServer(t, harness.ServerOptions{Env: []string{"CERTDESK_DNS_RESOLVER=" + issEmptyDNS(t)}})
	kgRequireWired(t, srv)
	kgAPIOrder(t, srv, kgAPIKey(t, srv), emails)
	links := map[string]string{}
	for _, e := range emails {
		links[e] = kgLink(t, srv, e)
	}
	return srv, links
}

// kgeOpen opens a link in a fresh browser context and waits for the module.
func kgeOpen(t *testing.T, srv *harness.Server, link string, opts ...harness.PageOption) playwright.Page {
	t.Helper()
	page, _ := harness.NewPage(t, srv, opts...)
	harness.Goto(t, page, link)
	kgWaitReady(t, page)
	return page
}

// kgeWaitForm waits until the certificate is back and the password form shows.
func kgeWaitForm(t *testing.T, page playwright.Page) {
	t.Helper()
	issDo(t, page, "password form", page.Locator("#kg-password-form").WaitFor(playwright.LocatorWaitForOptions{
		State: playwright.WaitForSelectorStateVisible, Timeout: playwright.Float(60000)}))
}

// kgeCountPacks makes the page count its calls of the module's pack.
func kgeCountPacks(t *testing.T, page playwright.Page) {
	t.Helper()
	_, err := page.Evaluate(`() => { const api = window.certdeskKeyGen, pack = api.pack; window.__kgPacks = 0;
		api.pack = function () { window.__kgPacks++; return pack.apply(this, arguments); }; }`)
	issDo(t, page, "count packs", err)
}

func kgeEval(t *testing.T, page playwright.Page, js string) any {
	t.Helper()
	v, err := page.Evaluate(js)
	issDo(t, page, js, err)
	return v
}

// kgeOpenSSLKey has openssl (with -legacy for the compatible encoding)
// take the key and the certificate out of the .p12 with the password and
// checks that they belong together and that the address is email's.
func kgeOpenSSLKey(t *testing.T, p12 []byte, password, email string, legacy bool) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed (run `make deps`)")
	}
	f := filepath.Join(t.TempDir(), "k.p12")
	if err := os.WriteFile(f, p12, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) []byte {
		t.Helper()
		args = append([]string{"pkcs12", "-in", f, "-passin", "env:KGPW"}, args...)
		if legacy {
			args = append(args, "-legacy")
		}
		cmd := exec.Command("openssl", args...)
		cmd.Env = append(os.Environ(), "KGPW="+password)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	block := func(out []byte) *pem.Block {
		t.Helper()
		i := bytes.Index(out, []byte("-----BEGIN"))
		if i < 0 {
			t.Fatalf("no PEM in openssl's output:\n%s", out)
		}
		b, _ := pem.Decode(out[i:])
		if b == nil {
			t.Fatalf("bad PEM in openssl's output:\n%s", out)
		}
		return b
	}
	key, err := x509.ParsePKCS8PrivateKey(block(run("-nocerts", "-nodes")).Bytes)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(block(run("-nokeys", "-clcerts")).Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if rk, ok := key.(*rsa.PrivateKey); !ok || !rk.PublicKey.Equal(leaf.PublicKey) {
		t.Errorf("openssl (legacy=%v): the key in the file does not match its certificate", legacy)
	}
	if len(leaf.EmailAddresses) != 1 || leaf.EmailAddresses[0] != email {
		t.Errorf("openssl: certificate addresses %v, want %s", leaf.EmailAddresses, email)
	}
	wrong := exec.Command("openssl", "pkcs12", "-in", f, "-passin", "pass:not the password", "-noout")
	if legacy {
		wrong.Args = append(wrong.Args, "-legacy")
	}
	if wrong.Run() == nil {
		t.Error("openssl opened the file with a wrong password")
	}
}

// A password with an emoji (a character outside Unicode's Basic
// Multilingual Plane, which a PKCS#12 password's BMPString cannot hold):
// go-pkcs12 refused it and the page showed "Something went wrong. Reload
// the page and try again" - after the certificate was issued, so a
// recipient who followed the advice lost the key and needed a new link.
// Now the page says what is wrong with the password, in the page's
// language, and another password (accented letters are fine) downloads a
// file that go-pkcs12 and openssl open with it; in the compatible (3DES)
// encoding with openssl -legacy. On the way: a double click on Generate
// sends one exchange, a double click on Download packs once.
func TestKeyGenEdgePasswordWithEmoji(t *testing.T) {
	srv, links := kgeLinks(t, "emoji@example.com", "emoji.nl@example.com")
	for _, tc := range []struct {
		email, locale, mode string
		want, notWant       string
		password            string
	}{
		{"emoji@example.com", "en-US", "compatible", "cannot contain emoji", "Reload", "pässwörd éèê ünïcødé"},
		{"emoji.nl@example.com", "nl-NL", "modern", "geen emoji", "Herlaad", "wachtwoord met één accent çà"},
	} {
		t.Run(tc.locale, func(t *testing.T) {
			page := kgeOpen(t, srv, links[tc.email], harness.WithLocale(tc.locale))
			reqs := harness.RecordRequests(page)
			issDo(t, page, "double-click Generate", page.Locator("#kg-generate").Dblclick())
			kgeWaitForm(t, page)
			posts := 0
			for _, r := range reqs.All() {
				if r.Method == "POST" {
					posts++
				}
			}
			if posts != 1 {
				t.Errorf("a double click on Generate sent %d POST requests, want one exchange", posts)
			}

			const emoji = "sleutel 🔑 wachtwoord"
			issDo(t, page, "password", page.Locator("#kg-password").Fill(emoji))
			issDo(t, page, "confirm", page.Locator("#kg-password2").Fill(emoji))
			issDo(t, page, "download", page.Locator("#kg-pack").Click())
			issDo(t, page, "error", page.Locator("#kg-error").WaitFor(playwright.LocatorWaitForOptions{State: playwright.WaitForSelectorStateVisible}))
			if got := issText(t, page, "#kg-error"); !strings.Contains(got, tc.want) || strings.Contains(got, tc.notWant) {
				t.Errorf("emoji password: the page says %q; want a message with %q, without %q", got, tc.want, tc.notWant)
			}

			// Another password: the key is still there.
			issDo(t, page, "password", page.Locator("#kg-password").Fill(tc.password))
			issDo(t, page, "confirm", page.Locator("#kg-password2").Fill(tc.password))
			issDo(t, page, "mode", page.Locator("input[name=kg-mode][value="+tc.mode+"]").Check())
			kgeCountPacks(t, page)
			dl, err := page.ExpectDownload(func() error { return page.Locator("#kg-pack").Dblclick() },
				playwright.PageExpectDownloadOptions{Timeout: playwright.Float(60000)})
			issDo(t, page, "download", err)
			issDo(t, page, "done", page.Locator("#kg-done").WaitFor(playwright.LocatorWaitForOptions{State: playwright.WaitForSelectorStateVisible}))
			if n := kgeEval(t, page, `() => window.__kgPacks`); n != 1 {
				t.Errorf("a double click on Download packed %v times", n)
			}
			if vis, _ := page.Locator("#kg-error").IsVisible(); vis {
				t.Errorf("an error after the download: %q", issText(t, page, "#kg-error"))
			}
			path, err := dl.Path()
			issDo(t, page, "download path", err)
			p12, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			key, leaf, _, err := pkcs12.DecodeChain(p12, tc.password)
			if err != nil {
				t.Fatalf("go-pkcs12 cannot open the file with %q: %v", tc.password, err)
			}
			if !key.(*rsa.PrivateKey).PublicKey.Equal(leaf.PublicKey) {
				t.Error("go-pkcs12: the key does not match the certificate")
			}
			kgeOpenSSLKey(t, p12, tc.password, tc.email, tc.mode == "compatible")
		})
	}
}

// After the certificate is issued and before the file is downloaded, the
// key exists only in the page: leaving it loses the key for good (the link
// is spent). The page's own language switch ("Nederlands", a plain link)
// did exactly that without a word, as did reloading or closing the tab.
// Now the browser asks first (beforeunload) while a certificate waits to
// be packaged; a recipient who stays can still download, and after the
// download the page lets them go without asking.
func TestKeyGenEdgeLeavingBeforeDownloadAsks(t *testing.T) {
	srv, links := kgeLinks(t, "leave@example.com")
	page := kgeOpen(t, srv, links["leave@example.com"])
	dialogs := make(chan string, 4)
	page.OnDialog(func(d playwright.Dialog) {
		dialogs <- d.Type()
		_ = d.Dismiss() // "Stay on page"
	})
	issDo(t, page, "generate", page.Locator("#kg-generate").Click())
	kgeWaitForm(t, page)
	lang := page.Locator(`nav.lang a[hreflang="nl"]`)
	issDo(t, page, "language switch", lang.Click(playwright.LocatorClickOptions{NoWaitAfter: playwright.Bool(true)}))
	select {
	case typ := <-dialogs:
		if typ != "beforeunload" {
			t.Errorf("dialog %q, want beforeunload", typ)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the language switch left the page without asking; it shows %q", issText(t, page, "main"))
	}
	if vis, _ := page.Locator("#kg-password-form").IsVisible(); !vis || !strings.Contains(page.URL(), "/keygen/") {
		t.Fatalf("after staying: at %s, password form visible %v", page.URL(), vis)
	}
	_, data := kgeDownload(t, page, "correct horse battery staple")
	if _, _, _, err := pkcs12.DecodeChain(data, "correct horse battery staple"); err != nil {
		t.Fatalf("the file after staying: %v", err)
	}

	// Downloaded: leaving needs no confirmation any more.
	issDo(t, page, "language switch", lang.Click())
	issDo(t, page, "Dutch page", page.WaitForURL("**/keygen/**"))
	if got := issText(t, page, "#kg-problem"); got != "Deze link is al gebruikt" {
		t.Errorf("after the download the language switch shows %q", got)
	}
	if len(dialogs) != 0 {
		t.Errorf("asked again after the download: %q", <-dialogs)
	}
}

// kgeDownload fills the password form (modern encoding) and returns the
// downloaded file's name and bytes.
func kgeDownload(t *testing.T, page playwright.Page, password string) (string, []byte) {
	t.Helper()
	issDo(t, page, "password", page.Locator("#kg-password").Fill(password))
	issDo(t, page, "confirm", page.Locator("#kg-password2").Fill(password))
	return kgDownload(t, page, func() error { return page.Locator("#kg-pack").Click() })
}

// With JavaScript off the page says it needs JavaScript, and Generate is
// disabled: it was a live button that did nothing when clicked.
func TestKeyGenEdgeWithoutJavaScript(t *testing.T) {
	srv, links := kgeLinks(t, "nojs@example.com")
	for _, tc := range []struct{ locale, want string }{
		{"en-US", "This page needs JavaScript"},
		{"nl-NL", "Deze pagina heeft JavaScript"},
	} {
		page, _ := harness.NewPage(t, srv, harness.WithLocale(tc.locale), func(o *playwright.BrowserNewContextOptions) {
			o.JavaScriptEnabled = playwright.Bool(false)
		})
		harness.Goto(t, page, links["nojs@example.com"])
		if got := issText(t, page, "main"); !strings.Contains(got, tc.want) {
			t.Errorf("%s without JavaScript the page says:\n%s", tc.locale, got)
		}
		if dis, err := page.Locator("#kg-generate").IsDisabled(); err != nil || !dis {
			t.Errorf("%s without JavaScript: Generate disabled %v (%v)", tc.locale, dis, err)
		}
	}
	// With JavaScript the same link's Generate works before the module is
	// ready (a click waits for it).
	page, _ := harness.NewPage(t, srv)
	harness.Goto(t, page, links["nojs@example.com"])
	issDo(t, page, "generate", page.Locator("#kg-generate").Click())
	kgeWaitForm(t, page)
}

// The browser may not keep the download: a save dialog cancelled (Firefox
// and Safari can ask where to save), a download blocked, a full disk. The
// page said "Your certificate is downloaded" and had dropped the key, so
// the recipient was left with nothing but a spent link. Now the page keeps
// the password-protected file (never the bare key) until it is left and
// offers to download it again, in English and Dutch.
func TestKeyGenEdgeDownloadAgain(t *testing.T) {
	srv, links := kgeLinks(t, "again@example.com", "again.nl@example.com")
	for _, tc := range []struct{ email, locale, button string }{
		{"again@example.com", "en-US", "Download the file again"},
		{"again.nl@example.com", "nl-NL", "Het bestand opnieuw downloaden"},
	} {
		t.Run(tc.locale, func(t *testing.T) {
			page := kgeOpen(t, srv, links[tc.email], harness.WithLocale(tc.locale))
			issDo(t, page, "generate", page.Locator("#kg-generate").Click())
			kgeWaitForm(t, page)
			const password = "correct horse battery staple"
			name, first := kgeDownload(t, page, password)
			issDo(t, page, "done", page.Locator("#kg-done").WaitFor(playwright.LocatorWaitForOptions{State: playwright.WaitForSelectorStateVisible}))
			again := page.Locator("#kg-done button", playwright.PageLocatorOptions{HasText: tc.button})
			if n, _ := again.Count(); n != 1 {
				t.Fatalf("no %q button after the download: %q", tc.button, issText(t, page, "#kg-done"))
			}
			name2, second := kgDownload(t, page, func() error { return again.Click() })
			if name2 != name || !bytes.Equal(second, first) {
				t.Errorf("downloaded again: %q, %d bytes; want %q, the same %d bytes", name2, len(second), name, len(first))
			}
			key, leaf, _, err := pkcs12.DecodeChain(second, password)
			if err != nil || !key.(*rsa.PrivateKey).PublicKey.Equal(leaf.PublicKey) || leaf.EmailAddresses[0] != tc.email {
				t.Errorf("the file downloaded again: %v", err)
			}
		})
	}
}
