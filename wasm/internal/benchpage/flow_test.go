package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxschmitt/playwright-go"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// These tests drive static/js/keygen.js and the real WebAssembly module in
// headless Chromium through a page with the markup the templ page has, an
// exchange endpoint backed by a throwaway CA, and the portal's CSP.

const flowEmail = "rita@example.com"

// flowHTML is the templ page's markup (views/keygen.templ), boot script
// and preload included.
func flowHTML() string {
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>KeyGen</title></head><body>
<link rel="preload" href="/static/keygen.wasm" as="fetch" type="application/wasm" crossorigin="anonymous" fetchpriority="high">
<script src="/static/js/keygen-boot.js" data-wasm-url="/static/keygen.wasm"></script>
<main id="keygen" data-token="tok-123" data-email="` + flowEmail + `" data-exchange-url="/keygen/exchange"
  data-wasm-url="/static/keygen.wasm" data-csrf="csrf-abc"
  data-msg-too-short="MSG-TOO-SHORT" data-msg-mismatch="MSG-MISMATCH" data-msg-weak="MSG-WEAK"
  data-msg-fair="MSG-FAIR" data-msg-strong="MSG-STRONG" data-msg-no-wasm="MSG-NO-WASM"
  data-msg-no-webcrypto="MSG-NO-WEBCRYPTO" data-msg-failed="MSG-FAILED">
<button id="kg-generate" type="button">Generate</button>
<ol id="kg-steps"><li data-step="key">Key</li><li data-step="request">Request</li><li data-step="package">Package</li></ol>
<form id="kg-password-form" hidden>
  <input id="kg-password" type="password" autocomplete="new-password">
  <input id="kg-password2" type="password" autocomplete="new-password">
  <div id="kg-strength"><meter min="0" max="100"></meter><span data-strength-text></span></div>
  <label><input type="radio" name="kg-mode" value="modern" checked> modern</label>
  <label><input type="radio" name="kg-mode" value="compatible"> compatible</label>
  <button id="kg-pack" type="submit">Download</button>
</form>
<div id="kg-error" role="alert" hidden></div>
<section id="kg-done" hidden>Done</section>
</main>
<script src="/static/wasm_exec.js" defer></script>
<script src="/static/js/keygen.js" defer></script>
</body></html>`
}

type flowCA struct {
	key      *ecdsa.PrivateKey
	cert     *x509.Certificate
	der      []byte
	mu       sync.Mutex
	requests []map[string]any
	fail     string // if set, answer {"errors":[{"message": fail}]}
}

func newFlowCA(t *testing.T) *flowCA {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Flow Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &flowCA{key: k, cert: c, der: der}
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func (ca *flowCA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		w.WriteHeader(400)
		return
	}
	ca.mu.Lock()
	ca.requests = append(ca.requests, body)
	fail := ca.fail
	ca.mu.Unlock()
	if r.Header.Get("X-CSRF-Token") != "csrf-abc" || body["token"] != "tok-123" {
		w.WriteHeader(403)
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"message": "MSG-FORBIDDEN"}}})
		return
	}
	if fail != "" {
		w.WriteHeader(422)
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"message": fail}}})
		return
	}
	csrPEM, _ := body["csr"].(string)
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil {
		w.WriteHeader(400)
		return
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		w.WriteHeader(400)
		return
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: flowEmail},
		EmailAddresses: []string{flowEmail},
		NotBefore:      time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		w.WriteHeader(500)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"certificate": pemOf("CERTIFICATE", der),
		"chain":       []string{pemOf("CERTIFICATE", ca.der)},
	})
}

var (
	flowOnce    sync.Once
	flowErr     error
	flowRoot    string
	flowWasm    string
	flowPW      *playwright.Playwright
	flowBrowser playwright.Browser
)

func TestMain(m *testing.M) {
	code := m.Run()
	if flowBrowser != nil {
		_ = flowBrowser.Close()
	}
	if flowPW != nil {
		_ = flowPW.Stop()
	}
	if flowWasm != "" {
		_ = os.RemoveAll(strings.TrimSuffix(flowWasm, "/keygen.wasm"))
	}
	os.Exit(code)
}

func setup(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skip(chromiumPath + " not installed")
	}
	flowOnce.Do(func() {
		if flowRoot, flowErr = repoRoot(); flowErr != nil {
			return
		}
		dir, err := os.MkdirTemp("", "keygenflow")
		if err != nil {
			flowErr = err
			return
		}
		if flowWasm, flowErr = buildWasm(flowRoot, dir); flowErr != nil {
			return
		}
		flowPW, flowBrowser, flowErr = launch(flowRoot)
	})
	if flowErr != nil {
		t.Fatal(flowErr)
	}
}

func newFlowPage(t *testing.T, srvURL string) playwright.Page {
	t.Helper()
	ctx, err := flowBrowser.NewContext(playwright.BrowserNewContextOptions{AcceptDownloads: playwright.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctx.Close() })
	page, err := ctx.NewPage()
	if err != nil {
		t.Fatal(err)
	}
	page.SetDefaultTimeout(20000)
	var mu sync.Mutex
	var problems []string
	page.On("console", func(m playwright.ConsoleMessage) {
		// An HTTP error status the test asked for is logged as a failed
		// resource load; anything else (CSP violation, script error) counts.
		if m.Type() == "error" && !strings.HasPrefix(m.Text(), "Failed to load resource: the server responded with a status of 4") {
			mu.Lock()
			problems = append(problems, m.Text())
			mu.Unlock()
		}
	})
	page.On("pageerror", func(err error) {
		mu.Lock()
		problems = append(problems, err.Error())
		mu.Unlock()
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			// A CSP violation or an uncaught error fails the test.
			t.Errorf("browser console: %s", p)
		}
	})
	if _, err := page.Goto(srvURL); err != nil {
		t.Fatal(err)
	}
	return page
}

func text(t *testing.T, page playwright.Page, sel string) string {
	t.Helper()
	s, err := page.Locator(sel).TextContent()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(s)
}

func classOf(t *testing.T, page playwright.Page, step string) string {
	t.Helper()
	c, err := page.Locator(`#kg-steps [data-step="` + step + `"]`).GetAttribute("class")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFlowDownloadsAWorkingP12(t *testing.T) {
	setup(t)
	for _, tc := range []struct{ mode string }{{"modern"}, {"compatible"}} {
		t.Run(tc.mode, func(t *testing.T) {
			ca := newFlowCA(t)
			srv := newServer(flowRoot, flowWasm, map[string]string{"/": flowHTML()},
				map[string]http.Handler{"POST /keygen/exchange": ca})
			defer srv.Close()
			page := newFlowPage(t, srv.URL+"/")

			if err := page.Locator("#kg-generate").Click(); err != nil {
				t.Fatal(err)
			}
			if err := page.Locator("#kg-password-form").WaitFor(playwright.LocatorWaitForOptions{State: playwright.WaitForSelectorStateVisible}); err != nil {
				t.Fatalf("password form never shown (error box: %q): %v", text(t, page, "#kg-error"), err)
			}
			if c := classOf(t, page, "key"); !strings.Contains(c, "is-done") {
				t.Errorf("key step class %q", c)
			}
			if c := classOf(t, page, "request"); !strings.Contains(c, "is-done") {
				t.Errorf("request step class %q", c)
			}

			// The server saw exactly the token and a CSR: no key material.
			ca.mu.Lock()
			if len(ca.requests) != 1 || len(ca.requests[0]) != 2 ||
				!strings.HasPrefix(ca.requests[0]["csr"].(string), "-----BEGIN CERTIFICATE REQUEST-----") {
				t.Errorf("exchange requests: %v", ca.requests)
			}
			for _, r := range ca.requests {
				for k, v := range r {
					if s, ok := v.(string); ok && strings.Contains(s, "PRIVATE KEY") {
						t.Errorf("exchange field %s carries a private key", k)
					}
				}
			}
			ca.mu.Unlock()

			// Too short, then mismatched: translated messages, no download.
			must(t, page.Locator("#kg-password").Fill("short1"))
			if s := text(t, page, "#kg-strength [data-strength-text]"); s != "MSG-TOO-SHORT" {
				t.Errorf("strength text for a short password: %q", s)
			}
			must(t, page.Locator("#kg-password2").Fill("short1"))
			must(t, page.Locator("#kg-pack").Click())
			if s := text(t, page, "#kg-error"); s != "MSG-TOO-SHORT" {
				t.Errorf("short password error %q", s)
			}
			const password = "Tr0ub4dor&3-horse-staple"
			must(t, page.Locator("#kg-password").Fill(password))
			if s := text(t, page, "#kg-strength [data-strength-text]"); s != "MSG-STRONG" {
				t.Errorf("strength text for a long mixed password: %q", s)
			}
			must(t, page.Locator("#kg-password2").Fill(password+"x"))
			must(t, page.Locator("#kg-pack").Click())
			if s := text(t, page, "#kg-error"); s != "MSG-MISMATCH" {
				t.Errorf("mismatch error %q", s)
			}
			must(t, page.Locator("#kg-password2").Fill(password))
			must(t, page.Locator(`input[name="kg-mode"][value="`+tc.mode+`"]`).Check())

			dl, err := page.ExpectDownload(func() error { return page.Locator("#kg-pack").Click() })
			if err != nil {
				t.Fatalf("no download (error box %q): %v", text(t, page, "#kg-error"), err)
			}
			if dl.SuggestedFilename() != flowEmail+".p12" {
				t.Errorf("download name %q", dl.SuggestedFilename())
			}
			path, err := dl.Path()
			if err != nil {
				t.Fatal(err)
			}
			p12, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			key, leaf, chain, err := pkcs12.DecodeChain(p12, password)
			if err != nil {
				t.Fatalf("downloaded .p12 does not open: %v", err)
			}
			rk, ok := key.(*rsa.PrivateKey)
			if !ok || !rk.PublicKey.Equal(leaf.PublicKey) || rk.N.BitLen() != 2048 {
				t.Fatal("the .p12 key does not match its certificate")
			}
			if len(chain) != 1 || !chain[0].Equal(ca.cert) {
				t.Errorf("chain has %d certificates", len(chain))
			}
			if err := page.Locator("#kg-done").WaitFor(playwright.LocatorWaitForOptions{State: playwright.WaitForSelectorStateVisible}); err != nil {
				t.Error("#kg-done not shown")
			}
			if c := classOf(t, page, "package"); !strings.Contains(c, "is-done") {
				t.Errorf("package step class %q", c)
			}
			v, err := page.Evaluate(`() => [localStorage.length, sessionStorage.length, document.getElementById("kg-password").value]`)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.([]any); got[0] != 0 || got[1] != 0 || got[2] != "" {
				t.Errorf("storage lengths / password field after download: %v", got)
			}
			// The key was dropped: a second pack fails.
			v, err = page.Evaluate(`() => window.certdeskKeyGen.pack(new Uint8Array([0x30, 0]), [], "long enough password", "modern").then(() => "packed", e => e.code)`)
			if err != nil || v != "no-key" {
				t.Errorf("pack after download: %v %v, want no-key", v, err)
			}
		})
	}
}

func TestFlowShowsServerErrors(t *testing.T) {
	setup(t)
	ca := newFlowCA(t)
	ca.fail = "MSG-LINK-EXPIRED"
	srv := newServer(flowRoot, flowWasm, map[string]string{"/": flowHTML()},
		map[string]http.Handler{"POST /keygen/exchange": ca})
	defer srv.Close()
	page := newFlowPage(t, srv.URL+"/")
	must(t, page.Locator("#kg-generate").Click())
	if err := page.Locator("#kg-error").WaitFor(playwright.LocatorWaitForOptions{State: playwright.WaitForSelectorStateVisible}); err != nil {
		t.Fatal(err)
	}
	if s := text(t, page, "#kg-error"); s != "MSG-LINK-EXPIRED" {
		t.Errorf("error box %q, want the server's message", s)
	}
	if c := classOf(t, page, "request"); !strings.Contains(c, "is-error") {
		t.Errorf("request step class %q", c)
	}
	if vis, _ := page.Locator("#kg-password-form").IsVisible(); vis {
		t.Error("password form shown after a failed exchange")
	}
	if en, _ := page.Locator("#kg-generate").IsEnabled(); !en {
		t.Error("generate button stays disabled: no retry possible")
	}
}

// A browser without WebAssembly, or without WebCrypto (an old browser, or
// a page not served over https or from localhost: there is no pure-Go key
// generation in the module), gets its message and no Generate button.
func TestFlowWithoutWebAssemblyOrWebCrypto(t *testing.T) {
	setup(t)
	for _, tc := range []struct{ name, initScript, message string }{
		{"no WebAssembly", "delete window.WebAssembly;", "MSG-NO-WASM"},
		{"no WebCrypto", `Object.defineProperty(Crypto.prototype, "subtle", { get() { return undefined; } });`, "MSG-NO-WEBCRYPTO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(flowRoot, flowWasm, map[string]string{"/": flowHTML()}, nil)
			defer srv.Close()
			ctx, err := flowBrowser.NewContext()
			if err != nil {
				t.Fatal(err)
			}
			defer ctx.Close()
			must(t, ctx.AddInitScript(playwright.Script{Content: playwright.String(tc.initScript)}))
			page, err := ctx.NewPage()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := page.Goto(srv.URL + "/"); err != nil {
				t.Fatal(err)
			}
			if s := text(t, page, "#kg-error"); s != tc.message {
				t.Errorf("error box %q, want %s", s, tc.message)
			}
			if en, _ := page.Locator("#kg-generate").IsEnabled(); en {
				t.Error("generate button enabled")
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
