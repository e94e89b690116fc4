package handlers

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"certdesk/internal/ca"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
)

type kgNoSettle struct{}

func (kgNoSettle) Settle(context.Context, *sql.Tx, int64, int64, int64) error { return nil }

type kgTest struct {
	*testEnv
	ks    *ordering.LinkService
	user  portal.User
	pw    string
	order portal.Order
}

// newKGTest is a test server with the KeyGen service wired to a real CA
// and pipeline, and an order whose recipient awaits key generation.
func newKGTest(t *testing.T) *kgTest {
	t.Helper()
	e := newTestEnv(t)
	auth, err := ca.Init(t.TempDir(), ca.InitOptions{Config: ca.Config{BaseURL: "http://127.0.0.1:8080", AllowInternalNames: true},
		IssuingKeyType: ca.KeyP256}, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	pl := &ordering.Pipeline{Store: e.db, CA: auth, Billing: kgNoSettle{}, Clock: e.clock, Log: e.srv.Log}
	ks := &ordering.LinkService{Store: e.db, Exchanger: pl, Clock: e.clock, BaseURL: e.http.URL, Log: e.srv.Log}
	e.srv.KeyGen = ks
	u, pw := e.addUser("req@example.com", portal.RoleUser, "Example Corp")
	ctx := context.Background()
	now := e.clock.Now()
	res, err := e.db.Exec(`INSERT INTO organizations(account_id, legal_name, country, registration, status, validated_at, expires_at, created_at)
		VALUES (?, 'Example Corp B.V.', 'NL', '12345678', 'validated', ?, ?, ?)`, u.AccountID, fmtT(now), fmtT(now.Add(portal.OrgValidationReuse)), fmtT(now))
	if err != nil {
		t.Fatal(err)
	}
	orgID, _ := res.LastInsertId()
	// Its domain, validated now: issuance re-checks it (SBR 4.2.1).
	if _, err := e.db.Exec(`INSERT INTO domains(account_id, organization_id, name, method, status, validated_at, expires_at, created_at)
		VALUES (?, ?, 'example.com', 'dns_txt', 'validated', ?, ?, ?)`, u.AccountID, orgID, fmtT(now), fmtT(now.AddDate(0, 0, 398)), fmtT(now)); err != nil {
		t.Fatal(err)
	}
	o := portal.Order{AccountID: u.AccountID, UserID: u.ID, Product: portal.ProductBusiness, OrganizationID: orgID, SignatureHash: portal.SHA256,
		PeriodStart: now, PeriodEnd: now.AddDate(1, 0, 0), PaymentMethod: portal.PayContract, AmountCents: 1000, AgreementVersion: "t", AgreedAt: now,
		Recipients: []portal.Recipient{{Email: "jane@example.com", CommonName: "Jane Doe", CNFromName: true, Status: portal.RecipientAwaitingKeyGen}}}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.InsertOrder(ctx, tx, &o, "") }); err != nil {
		t.Fatal(err)
	}
	return &kgTest{testEnv: e, ks: ks, user: u, pw: pw, order: o}
}

func fmtT(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

var kgLinkRE = regexp.MustCompile(`/keygen/([a-z2-7]{32,})`)

// link sends a KeyGen link and returns its token (read from the email).
func (k *kgTest) link() string {
	k.t.Helper()
	ctx := context.Background()
	r := k.order.Recipients[0]
	if err := k.db.Tx(ctx, func(tx *sql.Tx) error { return k.ks.SendLink(ctx, tx, k.order, r) }); err != nil {
		k.t.Fatal(err)
	}
	return k.lastToken()
}

func (k *kgTest) lastToken() string {
	k.t.Helper()
	m, err := k.db.LatestOutboxTo(context.Background(), "jane@example.com", ordering.KindKeyGenLink)
	if err != nil {
		k.t.Fatal(err)
	}
	mm := kgLinkRE.FindStringSubmatch(m.Text)
	if mm == nil {
		k.t.Fatalf("no link in %q", m.Text)
	}
	return mm[1]
}

var (
	kgKeyOnce sync.Once
	kgKey     *rsa.PrivateKey
)

func kgCSR(t *testing.T, key any) string {
	t.Helper()
	if key == nil {
		kgKeyOnce.Do(func() { kgKey, _ = rsa.GenerateKey(rand.Reader, 2048) })
		key = kgKey
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

var dataCSRFRE = regexp.MustCompile(`data-csrf="([^"]+)"`)

// open loads the KeyGen page in c (setting its session) and returns the
// page's CSRF token.
func (k *kgTest) open(c *client, tok string) string {
	k.t.Helper()
	r := c.get("/keygen/" + tok)
	if r.status != http.StatusOK {
		k.t.Fatalf("KeyGen page: %d\n%s", r.status, r.body)
	}
	m := dataCSRFRE.FindStringSubmatch(r.body)
	if m == nil {
		k.t.Fatal("no data-csrf on the page")
	}
	return m[1]
}

type exchangeAnswer struct {
	Certificate string   `json:"certificate"`
	Chain       []string `json:"chain"`
	Errors      []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

func (k *kgTest) exchange(c *client, hdr map[string]string, body any) (int, exchangeAnswer) {
	k.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", k.http.URL+"/keygen/exchange", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for h, v := range hdr {
		req.Header.Set(h, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a exchangeAnswer
	_ = json.Unmarshal(raw, &a)
	return resp.StatusCode, a
}

func (k *kgTest) sameOriginHeaders(csrf string) map[string]string {
	return map[string]string{"Origin": k.http.URL, "Sec-Fetch-Site": "same-origin", "X-CSRF-Token": csrf}
}

func TestKeyGenPage(t *testing.T) {
	k := newKGTest(t)
	tok := k.link()
	c := k.client()
	r := c.get("/keygen/" + tok)
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	if rp := r.header.Get("Referrer-Policy"); rp != "no-referrer" {
		t.Errorf("Referrer-Policy %q", rp)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	for _, want := range []string{`data-token="` + tok + `"`, `data-email="jane@example.com"`, "Jane Doe", "Example Corp B.V.",
		"Secure Email for Business", `id="kg-generate"`, "Generate certificate", `data-exchange-url="/keygen/exchange"`,
		`name="kg-mode" value="modern" checked`, `value="compatible"`, "jane@example.com.p12", "Thunderbird", "Apple Mail", "Outlook",
		`<script src="/static/js/keygen.js" defer>`, "the key is lost"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(r.body, "<script>") {
		t.Error("inline script")
	}
	if u := keygenWasmURL(); u != "" {
		if !strings.Contains(r.body, `data-wasm-url="`+u+`"`) {
			t.Errorf("page does not load %s", u)
		}
		// The module is preloaded and compiled while the page parses: the
		// preload and the boot script come before the page's content.
		pre := strings.Index(r.body, `<link rel="preload" href="`+u+`" as="fetch" type="application/wasm" crossorigin="anonymous"`)
		boot := strings.Index(r.body, `<script src="/static/js/keygen-boot.js" data-wasm-url="`+u+`"></script>`)
		if pre < 0 || boot < 0 || boot > strings.Index(r.body, `id="keygen"`) {
			t.Errorf("module preload at %d, boot script at %d, #keygen at %d", pre, boot, strings.Index(r.body, `id="keygen"`))
		}
		if !strings.Contains(r.body, `data-msg-no-webcrypto="`) {
			t.Error("no message for a browser without WebCrypto")
		}
	}
	if strings.Contains(k.logs.String(), tok) {
		t.Error("the token is in the log")
	}
	if !strings.Contains(k.logs.String(), "route=/keygen/:token") {
		t.Errorf("no request log line with the route pattern:\n%s", k.logs.String())
	}

	// Dutch
	nl := k.client()
	rq, _ := http.NewRequest("GET", k.http.URL+"/keygen/"+tok, nil)
	rq.Header.Set("Accept-Language", "nl-NL,nl;q=0.9")
	resp, err := nl.hc.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Certificaat genereren") || !strings.Contains(string(body), "Houd deze pagina open") {
		t.Error("no Dutch page for Accept-Language nl")
	}
}

// Unknown, expired, replaced and spent links get a clear 4xx page saying
// how to get a new one; so does the exchange.
func TestKeyGenLinkProblemPages(t *testing.T) {
	k := newKGTest(t)
	c := k.client()
	if r := c.get("/keygen/" + strings.Repeat("a", 32)); r.status != http.StatusNotFound || !strings.Contains(r.body, "This link is not valid") ||
		!strings.Contains(r.body, "send a new link") {
		t.Errorf("unknown: %d", r.status)
	}
	old := k.link()
	tok := k.link()
	if r := c.get("/keygen/" + old); r.status != http.StatusGone || !strings.Contains(r.body, "A newer link was sent") {
		t.Errorf("replaced: %d", r.status)
	}
	csrf := k.open(c, tok)
	k.clock.Advance(portal.KeyGenLinkLifetime)
	r := c.get("/keygen/" + tok)
	if r.status != http.StatusGone || !strings.Contains(r.body, "This link has expired") || !strings.Contains(r.body, "send a new link") ||
		r.header.Get("Referrer-Policy") != "no-referrer" || strings.Contains(r.body, "data-token") {
		t.Errorf("expired: %d", r.status)
	}
	st, a := k.exchange(c, k.sameOriginHeaders(csrf), map[string]string{"token": tok, "csr": kgCSR(t, nil)})
	if st != http.StatusGone || len(a.Errors) != 1 || !strings.Contains(a.Errors[0].Message, "30 days") {
		t.Errorf("exchange with an expired link: %d %+v", st, a)
	}
}

func TestKeyGenExchange(t *testing.T) {
	k := newKGTest(t)
	tok := k.link()
	c := k.client()
	csrf := k.open(c, tok)
	good := map[string]string{"token": tok, "csr": kgCSR(t, nil)}

	// Refusals first: none of them issues or spends the link.
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k3072, _ := rsa.GenerateKey(rand.Reader, 3072)
	pk, _ := x509.MarshalPKCS8PrivateKey(kgKey)
	priv := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}))
	cases := []struct {
		name   string
		hdr    map[string]string
		body   any
		status int
		msg    string
	}{
		{"RSA-3072", k.sameOriginHeaders(csrf), map[string]string{"token": tok, "csr": kgCSR(t, k3072)}, 422, "RSA-2048"},
		{"ECDSA", k.sameOriginHeaders(csrf), map[string]string{"token": tok, "csr": kgCSR(t, ec)}, 422, "RSA-2048"},
		{"private key", k.sameOriginHeaders(csrf), map[string]string{"token": tok, "csr": priv}, 422, "private key"},
		{"cross-origin", map[string]string{"Origin": "http://evil.example", "X-CSRF-Token": csrf}, good, 403, ""},
		{"cross-site fetch", map[string]string{"Origin": k.http.URL, "Sec-Fetch-Site": "cross-site", "X-CSRF-Token": csrf}, good, 403, ""},
		{"no origin headers", map[string]string{"X-CSRF-Token": csrf}, good, 403, ""},
		{"no CSRF token", map[string]string{"Origin": k.http.URL, "Sec-Fetch-Site": "same-origin"}, good, 403, ""},
		{"wrong CSRF token", map[string]string{"Origin": k.http.URL, "X-CSRF-Token": "x" + csrf}, good, 403, ""},
		{"unknown token", k.sameOriginHeaders(csrf), map[string]string{"token": "nope", "csr": good["csr"]}, 404, "incomplete"},
		{"extra field", k.sameOriginHeaders(csrf), map[string]string{"token": tok, "csr": good["csr"], "key": "x"}, 400, ""},
	}
	for _, cs := range cases {
		st, a := k.exchange(c, cs.hdr, cs.body)
		if st != cs.status {
			t.Errorf("%s: status %d, want %d (%+v)", cs.name, st, cs.status, a)
			continue
		}
		if a.Certificate != "" {
			t.Errorf("%s: a certificate came back", cs.name)
		}
		if cs.msg != "" && (len(a.Errors) == 0 || !strings.Contains(a.Errors[0].Message, cs.msg)) {
			t.Errorf("%s: errors %+v, want %q", cs.name, a.Errors, cs.msg)
		}
	}
	var n int
	_ = k.db.QueryRow(`SELECT COUNT(*) FROM certificates`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d certificates after refusals", n)
	}

	st, a := k.exchange(c, k.sameOriginHeaders(csrf), good)
	if st != http.StatusOK {
		k.dumpLogs()
		t.Fatalf("exchange: %d %+v", st, a)
	}
	b, _ := pem.Decode([]byte(a.Certificate))
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.EmailAddresses) != 1 || leaf.EmailAddresses[0] != "jane@example.com" || !leaf.PublicKey.(*rsa.PublicKey).Equal(&kgKey.PublicKey) {
		t.Errorf("certificate for %v", leaf.EmailAddresses)
	}
	pool := x509.NewCertPool()
	inter := x509.NewCertPool()
	for i, p := range a.Chain {
		cb, _ := pem.Decode([]byte(p))
		cc, err := x509.ParseCertificate(cb.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if i == len(a.Chain)-1 {
			pool.AddCert(cc)
		} else {
			inter.AddCert(cc)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: k.clock.Now().Add(time.Hour),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
		t.Errorf("chain does not verify: %v", err)
	}

	// Spent: the page and the exchange say so.
	if st, a := k.exchange(c, k.sameOriginHeaders(csrf), good); st != http.StatusGone || len(a.Errors) == 0 || !strings.Contains(a.Errors[0].Message, "already made") {
		t.Errorf("second exchange: %d %+v", st, a)
	}
	if r := c.get("/keygen/" + tok); r.status != http.StatusGone || !strings.Contains(r.body, "This link was already used") {
		t.Errorf("spent page: %d", r.status)
	}
	if strings.Contains(k.logs.String(), tok) {
		t.Error("the token is in the log")
	}
}

// The requestor's "Send a new KeyGen link" after a certificate was issued
// through the old link: the old certificate is revoked, a new link is
// emailed, the old link shows the spent page. Another account gets 404.
func TestKeyGenResendRoute(t *testing.T) {
	k := newKGTest(t)
	tok := k.link()
	c := k.client()
	csrf := k.open(c, tok)
	if st, _ := k.exchange(c, k.sameOriginHeaders(csrf), map[string]string{"token": tok, "csr": kgCSR(t, nil)}); st != 200 {
		t.Fatalf("exchange %d", st)
	}
	path := "/orders/" + itoa(k.order.ID) + "/recipients/" + itoa(k.order.Recipients[0].ID) + "/keygen-link"

	anon := k.client()
	if r := anon.post("/signin", path, nil); r.status != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", r.status)
	}
	other := k.client()
	_, opw := k.addUser("someone@other.test", portal.RoleUser, "Other Inc")
	other.signIn("someone@other.test", opw)
	if r := other.post("/dashboard", path, nil); r.status != http.StatusNotFound {
		t.Errorf("other account: %d", r.status)
	}

	req := k.client()
	req.signIn("req@example.com", k.pw)
	// the order page offers the new link for the certificate made through
	// KeyGen, and warns that it revokes that certificate
	page := req.get("/orders/" + itoa(k.order.ID))
	if !strings.Contains(page.body, `action="`+path+`"`) || !strings.Contains(page.body, "revokes the certificate made through the previous one") {
		t.Fatalf("order page lacks the revoke-and-relink button:\n%s", page.body)
	}
	r := req.post("/dashboard", path, url.Values{})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/orders/"+itoa(k.order.ID) {
		t.Fatalf("resend: %d %s", r.status, r.header.Get("Location"))
	}
	tok2 := k.lastToken()
	if tok2 == tok {
		t.Fatal("no new link")
	}
	var st string
	_ = k.db.QueryRow(`SELECT status FROM certificates ORDER BY id LIMIT 1`).Scan(&st)
	if st != "revoked" {
		t.Errorf("the unused certificate is %s", st)
	}
	if r := c.get("/keygen/" + tok2); r.status != http.StatusOK {
		t.Errorf("new link: %d", r.status)
	}
	if r := c.get("/keygen/" + tok); r.status != http.StatusGone {
		t.Errorf("old link: %d", r.status)
	}
	// A second click sends another link (the recipient awaits key generation).
	if r := req.post("/dashboard", path, url.Values{}); r.status != http.StatusSeeOther {
		t.Errorf("second resend: %d", r.status)
	}
	if r := c.get("/keygen/" + tok2); r.status != http.StatusGone {
		t.Errorf("the replaced link: %d", r.status)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestKeyGenWasmRoute(t *testing.T) {
	u := keygenWasmURL()
	if u == "" {
		t.Skip("static/keygen.wasm was not built into this test binary (run make wasm)")
	}
	e := newTestEnv(t)
	a := loadWasm()
	get := func(path, ae string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.http.URL+path, nil)
		req.Header.Set("Accept-Encoding", ae) // set: the transport then leaves the body as sent
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, raw := get(u, "identity")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/wasm" || !bytes.Equal(raw, a.raw) ||
		!strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("identity: %d %v", resp.StatusCode, resp.Header)
	}
	if resp.ContentLength != int64(len(a.raw)) || len(resp.TransferEncoding) != 0 {
		t.Errorf("identity: Content-Length %d, Transfer-Encoding %v; want %d, not chunked", resp.ContentLength, resp.TransferEncoding, len(a.raw))
	}
	if !bytes.HasPrefix(raw, []byte("\x00asm")) {
		t.Error("not a wasm module")
	}
	resp, gz := get(u, "gzip, deflate")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip: %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	if un, _ := io.ReadAll(zr); !bytes.Equal(un, raw) {
		t.Error("gzip body is not the module")
	}
	if len(a.br) > 0 {
		resp, br := get(u, "gzip, deflate, br")
		if resp.Header.Get("Content-Encoding") != "br" || !bytes.Equal(br, a.br) || len(br) >= len(gz) ||
			resp.ContentLength != int64(len(a.br)) {
			t.Errorf("brotli: %v, %d bytes", resp.Header, len(br))
		}
		if resp, _ := get(u, "br;q=0, gzip"); resp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("br;q=0 answered with %s", resp.Header.Get("Content-Encoding"))
		}
	}
	if resp, _ := get("/static/keygen.0000000000000000.wasm", "gzip"); resp.StatusCode != 404 {
		t.Errorf("wrong hash: %d", resp.StatusCode)
	}
	if resp, _ := get("/static/keygen.wasm", "identity"); resp.StatusCode != 200 || strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("plain name: %d %s", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	for _, js := range []string{"/static/js/keygen.js", "/static/js/keygen-boot.js"} {
		if resp, _ := get(js, "identity"); resp.StatusCode != 200 {
			t.Errorf("%s: %d", js, resp.StatusCode)
		}
	}
}
