package handlers

// Issue 5 audit: the certificate surfaces tried the way a hostile or
// clumsy user would. Each Test below except TestAuditHostileInputsRefused
// failed before its fix; that one records what was tried and already
// behaved.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"certdesk/internal/ca"
	"certdesk/internal/identity"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/store"
)

// ocspRaw sends an OCSP request (POST with ct, or GET with the base64 in
// the path) and returns the status, headers and body.
func (e *certEnv) ocspRaw(method, ct string, der []byte) (int, http.Header, []byte) {
	e.t.Helper()
	var req *http.Request
	if method == http.MethodPost {
		req, _ = http.NewRequest(method, e.http.URL+"/ocsp", bytes.NewReader(der))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
	} else {
		req, _ = http.NewRequest(method, e.http.URL+"/ocsp/"+url.PathEscape(base64.StdEncoding.EncodeToString(der)), nil)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, r.Header, b
}

// A database failure while looking a serial up must not be answered with a
// signed "unknown" (that a GET would let caches keep for an hour, for a
// certificate that may be revoked): the responder answers an OCSP error
// that is not cached, and logs the cause.
func TestAuditOCSPLookupFailureIsNotUnknown(t *testing.T) {
	e := newCertEnv(t)
	u, _ := e.addUser("req@example.com", portal.RoleAccountAdmin, "Example Corp")
	cert := e.issue(u, "jane@example.com")
	sn, _ := new(big.Int).SetString(cert.Serial, 16)
	req, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: sn}, e.auth.IssuingCert(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.db.Close() // every look-up now fails
	for _, m := range []string{http.MethodPost, http.MethodGet} {
		_, h, body := e.ocspRaw(m, "application/ocsp-request", req)
		resp, err := ocsp.ParseResponse(body, nil)
		var re ocsp.ResponseError
		if !errors.As(err, &re) || (re.Status != ocsp.InternalError && re.Status != ocsp.TryLater) {
			st := -1
			if resp != nil {
				st = resp.Status
			}
			t.Errorf("%s with the database down: status %d (0 good, 1 revoked, 2 unknown), err %v; want internalError or tryLater", m, st, err)
		}
		if h.Get("Content-Type") != "application/ocsp-response" || strings.Contains(h.Get("Cache-Control"), "public") {
			t.Errorf("%s: Content-Type %q, Cache-Control %q", m, h.Get("Content-Type"), h.Get("Cache-Control"))
		}
	}
	if !strings.Contains(e.logs.String(), "level=ERROR") || !strings.Contains(e.logs.String(), "OCSP") {
		t.Errorf("the failed look-up is not logged:\n%s", e.logs.String())
	}
}

// A list URL whose offset is past the end (a bookmark, an edited URL) shows
// the last page, not "No certificates yet" to an account that has some.
func TestAuditCertListOffsetPastTheEnd(t *testing.T) {
	e := newCertEnv(t)
	c, _, cert := e.adminWithCertificate()
	for _, off := range []string{"50", "100", "9223372036854775807", "-3", "abc", "99999999999999999999"} {
		r := c.get("/certificates?offset=" + off)
		if r.status != http.StatusOK || !strings.Contains(r.body, cert.Serial) || strings.Contains(r.body, "No certificates yet") {
			t.Errorf("offset %s: %d, serial shown %v, says empty %v", off, r.status, strings.Contains(r.body, cert.Serial),
				strings.Contains(r.body, "No certificates yet"))
		}
		if strings.Contains(r.body, "offset=-") {
			t.Errorf("offset %s: a pager link with a negative offset", off)
		}
	}
}

// Forms the issuance pipeline stores, as they read in English.
var auditProfilesEN = []string{"mailbox-validated strict", "sponsor-validated strict", "organization-validated strict",
	"sponsor-validated multipurpose", "mailbox-validated multipurpose"}

// The certificate page in Dutch has no English left: the profile (stored as
// "mailbox-validated strict (2.23.140.1.5.1.3)") is translated, the OID
// kept; the English page still reads as before. Revoked shows in the list,
// on the page and in the API.
func TestAuditCertPageDutch(t *testing.T) {
	e := newCertEnv(t)
	c, u, cert := e.adminWithCertificate()
	id := strconv.FormatInt(cert.ID, 10)
	nl := map[string]string{"Accept-Language": "nl-NL,nl;q=0.9"}

	if r := c.get("/certificates/" + id); !strings.Contains(r.body, "mailbox-validated strict (2.23.140.1.5.1.3)") {
		t.Errorf("English page: the profile is not shown as before")
	}
	r := c.do("GET", "/certificates/"+id, nil, nl)
	if r.status != 200 || !strings.Contains(r.body, "Certificaat intrekken") {
		t.Fatalf("no Dutch page: %d", r.status)
	}
	for _, en := range append(auditProfilesEN, "-validated", "strict", "multipurpose") {
		if strings.Contains(r.body, en) {
			t.Errorf("Dutch certificate page contains English %q", en)
		}
	}
	if !strings.Contains(r.body, "mailbox-gevalideerd") || !strings.Contains(r.body, "2.23.140.1.5.1.3") {
		t.Errorf("Dutch page lacks the translated profile with its OID")
	}

	// Every product's stored profile has a Dutch rendering.
	for _, en := range auditProfilesEN {
		if _, err := e.db.Exec(`UPDATE certificates SET profile = ? WHERE id = ?`, en+" (2.23.140.1.5.9.9)", cert.ID); err != nil {
			t.Fatal(err)
		}
		r := c.do("GET", "/certificates/"+id, nil, nl)
		if strings.Contains(r.body, en) || !strings.Contains(r.body, "gevalideerd") || !strings.Contains(r.body, "2.23.140.1.5.9.9") {
			t.Errorf("profile %q is not translated", en)
		}
	}

	tok := c.csrf("/certificates/" + id)
	if r := c.do("POST", "/certificates/"+id+"/revoke", url.Values{"reason": {"keyCompromise"}, "csrf": {tok}}, nl); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.status)
	}
	if r := c.do("GET", "/certificates", nil, nl); !strings.Contains(r.body, "Ingetrokken") || strings.Contains(r.body, ">Geldig<") {
		t.Error("the Dutch list does not show Ingetrokken")
	}
	if r := c.do("GET", "/certificates/"+id, nil, nl); !strings.Contains(r.body, "is ingetrokken op") || !strings.Contains(r.body, "Sleutel gecompromitteerd") ||
		strings.Contains(r.body, "Key compromise") || strings.Contains(r.body, `action="/certificates/`+id+`/revoke"`) {
		t.Error("the Dutch page does not show the revocation, or still offers it")
	}
	key, _, _ := e.db.CreateAPIKey(context.Background(), u.AccountID, u.ID, "t")
	if r := c.do("GET", "/api/v1/certificate/"+id, nil, map[string]string{APIKeyHeader: key}); !strings.Contains(r.body, `"status":"revoked"`) ||
		!strings.Contains(r.body, `"revocation_reason":"keyCompromise"`) {
		t.Errorf("API: %s", r.body)
	}
}

// The error pages a Dutch user meets on the certificate URLs (unknown id,
// unknown format, missing CSRF token, a validation agent) carry no
// English status text such as "404 Not Found".
func TestAuditDutchErrorPagesOnCertificateURLs(t *testing.T) {
	e := newCertEnv(t)
	c, _, cert := e.adminWithCertificate()
	id := strconv.FormatInt(cert.ID, 10)
	nl := map[string]string{"Accept-Language": "nl"}
	agent, apw := e.addUser("agent@certdesk.test", portal.RoleValidationAgent, "")
	ac := e.client()
	ac.signIn(agent.Email, apw)
	for _, tc := range []struct {
		c      *client
		method string
		path   string
		status int
		nl     string
	}{
		{c, "GET", "/certificates/abc", 404, "Pagina niet gevonden"},
		{c, "GET", "/certificates/" + id + "/download/PEM", 422, "Het verzoek kon niet worden verwerkt"},
		{c, "POST", "/certificates/" + id + "/revoke", 403, "Dit formulier is verlopen"},
		{ac, "GET", "/certificates/" + id, 403, "U hebt geen toegang tot deze pagina"},
	} {
		var form url.Values
		if tc.method == "POST" {
			form = url.Values{"reason": {"keyCompromise"}}
		}
		r := tc.c.do(tc.method, tc.path, form, nl)
		if r.status != tc.status || !strings.Contains(r.body, tc.nl) {
			t.Errorf("%s %s: %d, want %d with %q", tc.method, tc.path, r.status, tc.status, tc.nl)
		}
		for _, en := range []string{"Not Found", "Unprocessable Entity", "Forbidden"} {
			if strings.Contains(r.body, en) {
				t.Errorf("%s %s in Dutch shows %q", tc.method, tc.path, en)
			}
		}
	}
	if r := c.get("/certificates/abc"); !strings.Contains(r.body, ">404<") || !strings.Contains(r.body, "Page not found") {
		t.Error("the English error page lost its status code or heading")
	}
}

// A revocation body with anything after the JSON object is refused: the
// revocation cannot be undone, so an ambiguous request must not revoke.
func TestAuditAPIRevokeRefusesTrailingData(t *testing.T) {
	e := newCertEnv(t)
	u, _ := e.addUser("req@example.com", portal.RoleAccountAdmin, "Example Corp")
	cert := e.issue(u, "jane@example.com")
	id := strconv.FormatInt(cert.ID, 10)
	key, _, _ := e.db.CreateAPIKey(context.Background(), u.AccountID, u.ID, "t")
	for _, body := range []string{`{"reason":"superseded"} {"reason":"bogus"}`, `{"reason":"superseded"}}`, `{"reason":"superseded"}xyz`} {
		r := e.apiPut(key, "/api/v1/certificate/"+id+"/revoke", body)
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `"invalid"`) {
			t.Errorf("%s: %d %s", body, r.status, r.body)
		}
	}
	if got, _ := e.db.Certificate(context.Background(), nil, u.AccountID, cert.ID); got.Status != "issued" {
		t.Fatalf("status %s after refused bodies", got.Status)
	}
	// A body with only trailing white space is fine.
	if r := e.apiPut(key, "/api/v1/certificate/"+id+"/revoke", "{\"reason\":\"superseded\"}\n\n"); r.status != http.StatusNoContent {
		t.Errorf("trailing newline: %d %s", r.status, r.body)
	}
}

// With the root key kept offline (ca.Load without root.key), the root's
// CRL URL (in the issuing CA certificate) cannot be made here. Each
// anonymous fetch of it made the pipeline re-sign and store a new CRL of
// the issuing CA (CRL number +1, a write transaction and a signature per
// request) and then answer 503 with an ERROR log line. Now it is 404 with
// no write; the issuing CA's CRL is unaffected. A root CRL stored earlier
// (while the key was here) is still served.
func TestAuditRootCRLWithoutRootKey(t *testing.T) {
	clock := portal.NewFixedClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir := t.TempDir()
	cfg := ca.Config{BaseURL: "http://127.0.0.1", AllowInternalNames: true}
	if _, err := ca.Init(dir, ca.InitOptions{Config: cfg, IssuingKeyType: ca.KeyP256}, clock); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, ca.RootKeyFile)); err != nil {
		t.Fatal(err)
	}
	auth, err := ca.Load(dir, cfg, clock)
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	pipe := &ordering.Pipeline{Store: db, CA: auth, Billing: noSettle{}, Clock: clock, Log: log}
	keys := [][]byte{[]byte(strings.Repeat("k", 64)), []byte(strings.Repeat("b", 32))}
	s := New(Config{BaseURL: "http://127.0.0.1"}, Deps{DB: db, Identity: &identity.Service{Store: db, Clock: clock}, Clock: clock,
		Log: log, SessionKeys: keys, CA: auth, Certs: pipe})
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	get := func(path string) (int, string) {
		r, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		io.Copy(io.Discard, r.Body)
		return r.StatusCode, r.Header.Get("Content-Type")
	}
	if st, ct := get("/crl/" + auth.IssuerID() + ".crl"); st != 200 || ct != "application/pkix-crl" {
		t.Fatalf("issuing CA CRL: %d %s", st, ct)
	}
	_, before, _, _, _ := db.CRL(context.Background(), auth.IssuerID())
	for range 5 {
		if st, _ := get("/crl/" + auth.RootID() + ".crl"); st != http.StatusNotFound {
			t.Errorf("root CRL without the root key: %d, want 404", st)
		}
	}
	if _, after, _, _, _ := db.CRL(context.Background(), auth.IssuerID()); after != before {
		t.Errorf("5 root CRL fetches re-signed the issuing CA's CRL: number %d -> %d", before, after)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs.String())
	}
	// A root CRL made while the key was here is served.
	rootCRL := []byte("stored root CRL")
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		return db.SaveCRL(context.Background(), tx, auth.RootID(), 1, rootCRL, clock.Now(), clock.Now().Add(ca.RootCRLValidity))
	}); err != nil {
		t.Fatal(err)
	}
	if st, ct := get("/crl/" + auth.RootID() + ".crl"); st != 200 || ct != "application/pkix-crl" {
		t.Errorf("stored root CRL: %d %s", st, ct)
	}
}

// What was tried and already behaved: ids that are not ids, another
// account's, rows that were never delivered, formats, reasons, bodies, the
// second revocation, and OCSP requests a careless client sends.
func TestAuditHostileInputsRefused(t *testing.T) {
	e := newCertEnv(t)
	ctx := context.Background()
	u, pw := e.addUser("req@example.com", portal.RoleAccountAdmin, "Example Corp")
	other, _ := e.addUser("eve@other.test", portal.RoleAccountAdmin, "Other Ltd")
	cert := e.issue(u, "jane@example.com")
	theirs := e.issue(other, "x@other.test")
	id := strconv.FormatInt(cert.ID, 10)
	c := e.client()
	c.signIn(u.Email, pw)
	key, _, _ := e.db.CreateAPIKey(ctx, u.AccountID, u.ID, "t")
	api := map[string]string{APIKeyHeader: key}

	// a row still being issued, and one the CA refused
	pending := portal.Certificate{AccountID: u.AccountID, OrderID: cert.OrderID, RecipientID: cert.RecipientID, PlanPeriod: 2,
		Serial: "ABCDEF0123456789AB", Emails: []string{"jane@example.com"}}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.BeginIssuance(ctx, tx, &pending, e.auth.IssuerID()) }); err != nil {
		t.Fatal(err)
	}
	failed := portal.Certificate{AccountID: u.AccountID, OrderID: cert.OrderID, RecipientID: cert.RecipientID, PlanPeriod: 3,
		Serial: "ABCDEF0123456789AC", Emails: []string{"jane@example.com"}}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.BeginIssuance(ctx, tx, &failed, e.auth.IssuerID()) }); err != nil {
		t.Fatal(err)
	}
	if err := e.db.FailIssuance(ctx, nil, failed.ID, []string{"e_x"}, "lint"); err != nil {
		t.Fatal(err)
	}
	ids := []string{"abc", "-1", "0", "99999999999999999999999", "1e3", "0x1", id + "x", strconv.FormatInt(theirs.ID, 10),
		strconv.FormatInt(pending.ID, 10), strconv.FormatInt(failed.ID, 10)}
	for _, x := range ids {
		for _, p := range []string{"/certificates/" + x, "/certificates/" + x + "/download/pem", "/certificates/" + x + "/download/p7b"} {
			if r := c.get(p); r.status != http.StatusNotFound || strings.Contains(r.body, theirs.Serial) {
				t.Errorf("GET %s: %d", p, r.status)
			}
		}
		for _, p := range []string{"/api/v1/certificate/" + x, "/api/v1/certificate/" + x + "/download/format/der"} {
			if r := c.do("GET", p, nil, api); r.status != http.StatusNotFound || !strings.Contains(r.body, `"not_found"`) {
				t.Errorf("API GET %s: %d %s", p, r.status, r.body)
			}
		}
		if r := e.apiPut(key, "/api/v1/certificate/"+x+"/revoke", `{"reason":"superseded"}`); r.status != http.StatusNotFound {
			t.Errorf("API revoke %s: %d", x, r.status)
		}
		if r := c.post("/certificates/"+id, "/certificates/"+x+"/revoke", url.Values{"reason": {"superseded"}}); r.status != http.StatusNotFound {
			t.Errorf("revoke %s: %d", x, r.status)
		}
	}
	for _, f := range []string{"PEM", "Der", "pfx", "p12", "crt", "pem."} {
		if r := c.do("GET", "/api/v1/certificate/"+id+"/download/format/"+f, nil, api); r.status != http.StatusUnprocessableEntity ||
			!strings.Contains(r.body, "The format is pem, der or p7b.") {
			t.Errorf("API format %s: %d %s", f, r.status, r.body)
		}
	}
	// reasons: numbers, CA-only, non-existent, wrong case; bodies
	for body, want := range map[string]int{
		`{"reason":2}`: 422, `{"reason":"2"}`: 422, `{"reason":"7"}`: 422, `{"reason":"cACompromise"}`: 422,
		`{"reason":"privilegeWithdrawn"}`: 422, `{"reason":"certificateHold"}`: 422, `{"reason":"KEYCOMPROMISE"}`: 422,
		`{}`: 422, `null`: 422, `[]`: 422, `x`: 422, ``: 422, `{"reason":"superseded","skip":true}`: 422,
		`{"reason":"superseded","comments":"` + strings.Repeat("a", 2<<20) + `"}`: http.StatusRequestEntityTooLarge,
	} {
		if r := e.apiPut(key, "/api/v1/certificate/"+id+"/revoke", body); r.status != want || !strings.Contains(r.body, `"errors"`) {
			t.Errorf("API revoke %.40s: %d %s, want %d", body, r.status, r.body, want)
		}
	}
	for _, reason := range []string{"1", "2", "7", "cACompromise", "privilegeWithdrawn", "keycompromise", ""} {
		if r := c.post("/certificates/"+id, "/certificates/"+id+"/revoke", url.Values{"reason": {reason}}); r.status != http.StatusUnprocessableEntity ||
			!strings.Contains(r.body, "Choose a revocation reason.") {
			t.Errorf("page reason %q: %d", reason, r.status)
		}
	}
	if r := c.do("POST", "/certificates/"+id+"/revoke", url.Values{"reason": {"superseded"}}, nil); r.status != http.StatusForbidden {
		t.Errorf("no CSRF token: %d", r.status)
	}
	if got, _ := e.db.Certificate(ctx, nil, u.AccountID, cert.ID); got.Status != "issued" {
		t.Fatalf("status %s after refused revocations", got.Status)
	}
	if r := e.apiPut(key, "/api/v1/certificate/"+id+"/revoke", `{"reason":"superseded"}`); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := e.apiPut(key, "/api/v1/certificate/"+id+"/revoke", `{"reason":"keyCompromise"}`); r.status != http.StatusConflict || !strings.Contains(r.body, "already revoked") {
		t.Errorf("second API revoke: %d %s", r.status, r.body)
	}
	if r := c.post("/certificates/"+id, "/certificates/"+id+"/revoke", url.Values{"reason": {"keyCompromise"}}); r.status != http.StatusSeeOther {
		t.Errorf("second page revoke: %d", r.status)
	}
	if r := c.get("/certificates/" + id); !strings.Contains(r.body, "This certificate is already revoked.") {
		t.Error("the second revocation is not reported")
	}
	n := 0
	for _, rc := range e.crl().RevokedCertificateEntries {
		if rc.SerialNumber.Text(16) == strings.ToLower(cert.Serial) {
			n++
			if rc.ReasonCode != 4 {
				t.Errorf("CRL reason %d, want the first one (superseded)", rc.ReasonCode)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d CRL entries for the certificate", n)
	}

	// OCSP: malformed, empty, huge, unknown serial, another issuer.
	for name, body := range map[string][]byte{"garbage": []byte("garbage"), "empty": nil, "huge": bytes.Repeat([]byte{0x30}, 10000)} {
		st, h, b := e.ocspRaw(http.MethodPost, "application/ocsp-request", body)
		if st != 200 || h.Get("Content-Type") != "application/ocsp-response" || !bytes.Equal(b, ocsp.MalformedRequestErrorResponse) {
			t.Errorf("OCSP %s: %d %s %x", name, st, h.Get("Content-Type"), b)
		}
	}
	if st, _, _ := e.ocspRaw(http.MethodPost, "application/x-www-form-urlencoded", []byte("x")); st != http.StatusUnsupportedMediaType {
		t.Errorf("OCSP with a form content type: %d", st)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(5), Subject: pkix.Name{CommonName: "Other CA"}, NotBefore: time.Now(),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	otherCA, _ := x509.ParseCertificate(der)
	sn, _ := new(big.Int).SetString(cert.Serial, 16)
	foreign, _ := ocsp.CreateRequest(&x509.Certificate{SerialNumber: sn}, otherCA, nil)
	rootAsIssuer, _ := ocsp.CreateRequest(e.auth.IssuingCert(), e.auth.RootCert(), nil)
	for _, m := range []string{http.MethodPost, http.MethodGet} {
		for name, req := range map[string][]byte{"another issuer": foreign, "the root as issuer": rootAsIssuer} {
			if _, h, b := e.ocspRaw(m, "application/ocsp-request", req); !bytes.Equal(b, ocsp.UnauthorizedErrorResponse) || strings.Contains(h.Get("Cache-Control"), "public") {
				t.Errorf("OCSP %s %s: %x %q", m, name, b, h.Get("Cache-Control"))
			}
		}
	}
	for _, s := range []string{"123456789", pending.Serial, failed.Serial} {
		if st := e.ocspStatus(s, false); st.Status != ocsp.Unknown {
			t.Errorf("OCSP %s: %d, want unknown", s, st.Status)
		}
	}
	for _, p := range []string{"/ocsp/@@@notbase64!!", "/ocsp/", "/ocsp", "/ocsp/" + strings.Repeat("A", 6000),
		"/ocsp/" + base64.StdEncoding.EncodeToString([]byte("garbage"))} {
		r := c.get(p)
		if r.status != 200 || r.body != string(ocsp.MalformedRequestErrorResponse) || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %.30s: %d %x", p, r.status, r.body)
		}
	}
	// URL-escaped base64 with "/", "+" and "=" (%2F, %2B, %3D), and the
	// URL-safe alphabet.
	req, _ := ocsp.CreateRequest(&x509.Certificate{SerialNumber: sn}, e.auth.IssuingCert(), nil)
	for _, p := range []string{url.PathEscape(base64.StdEncoding.EncodeToString(req)), url.QueryEscape(base64.StdEncoding.EncodeToString(req)),
		base64.RawURLEncoding.EncodeToString(req)} {
		r := c.get("/ocsp/" + p)
		resp, err := ocsp.ParseResponseForCert([]byte(r.body), &x509.Certificate{SerialNumber: sn}, e.auth.IssuingCert())
		if err != nil || resp.Status != ocsp.Revoked || resp.RevocationReason != ocsp.Superseded {
			t.Errorf("GET /ocsp/%.20s...: %v", p, err)
		}
	}
	// CRL: type and caching
	r := c.get("/crl/" + e.auth.IssuerID() + ".crl")
	if r.header.Get("Content-Type") != "application/pkix-crl" || r.header.Get("Cache-Control") != "public, max-age=300" || r.header.Get("Set-Cookie") != "" {
		t.Errorf("CRL headers: %v", r.header)
	}
}

// adminWithCertificate signs in the account administrator of "Example
// Corp" and issues jane@example.com a certificate in that account.
func (e *certEnv) adminWithCertificate() (*client, portal.User, store.CertificateRow) {
	e.t.Helper()
	u, pw := e.addUser("req@example.com", portal.RoleAccountAdmin, "Example Corp")
	cert := e.issue(u, "jane@example.com")
	c := e.client()
	c.signIn(u.Email, pw)
	return c, u, cert
}
