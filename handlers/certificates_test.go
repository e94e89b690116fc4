package handlers

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
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
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

type noSettle struct{}

func (noSettle) Settle(context.Context, *sql.Tx, int64, int64, int64) error { return nil }

// validatedMailboxes: every address counts as validated (the pipeline
// re-checks mailbox validation at issuance, SBR 4.2.1; these tests are
// about the certificate pages, the check is tested in internal/ordering).
type validatedMailboxes struct{}

func (validatedMailboxes) MailboxValidated(context.Context, portal.Querier, int64, string) (bool, error) {
	return true, nil
}

func (validatedMailboxes) StartMailboxForOrder(context.Context, *sql.Tx, int64, string, int64, string) error {
	return nil
}

type certEnv struct {
	*testEnv
	auth *ca.Authority
	pipe *ordering.Pipeline
}

// newCertEnv is newTestEnv with a CA and the issuance pipeline.
func newCertEnv(t *testing.T) *certEnv {
	t.Helper()
	clock := portal.NewFixedClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	auth, err := ca.Init(t.TempDir(), ca.InitOptions{Config: ca.Config{BaseURL: "http://127.0.0.1", AllowInternalNames: true},
		IssuingKeyType: ca.KeyP256}, clock)
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	pipe := &ordering.Pipeline{Store: db, CA: auth, Billing: noSettle{}, Clock: clock, Log: log, Mailboxes: validatedMailboxes{}}
	keys := [][]byte{[]byte(strings.Repeat("k", 64)), []byte(strings.Repeat("b", 32))}
	s := New(Config{BaseURL: "http://127.0.0.1"}, Deps{DB: db, Identity: &identity.Service{Store: db, Clock: clock}, Clock: clock,
		Log: log, SessionKeys: keys, CA: auth, Certs: pipe})
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &certEnv{testEnv: &testEnv{t: t, srv: s, http: hs, db: db, clock: clock, logs: logs}, auth: auth, pipe: pipe}
}

// issue stores an order of u's with one ready recipient and issues it.
func (e *certEnv) issue(u portal.User, email string) store.CertificateRow {
	e.t.Helper()
	ctx := context.Background()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
	now := e.clock.Now()
	o := portal.Order{AccountID: u.AccountID, UserID: u.ID, Product: portal.ProductIndividual, SignatureHash: portal.SHA256,
		PeriodStart: now, PeriodEnd: now.AddDate(1, 0, 0), PaymentMethod: portal.PayContract, AmountCents: 1000,
		AgreementVersion: "t", AgreedAt: now, Recipients: []portal.Recipient{{Email: email, CommonName: email,
			Status: portal.RecipientReady, CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}}}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.InsertOrder(ctx, tx, &o, "") }); err != nil {
		e.t.Fatal(err)
	}
	if err := e.pipe.IssueRecipient(ctx, o.Recipients[0].ID); err != nil {
		e.t.Fatal(err)
	}
	r, _ := e.db.Recipient(ctx, nil, o.Recipients[0].ID)
	c, err := e.db.Certificate(ctx, nil, u.AccountID, r.CertificateID)
	if err != nil {
		e.t.Fatalf("not issued: %v (recipient %+v)", err, r)
	}
	return c
}

func (e *certEnv) ocspStatus(serial string, post bool) *ocsp.Response {
	e.t.Helper()
	n, _ := new(big.Int).SetString(serial, 16)
	leaf := &x509.Certificate{SerialNumber: n}
	req, err := ocsp.CreateRequest(leaf, e.auth.IssuingCert(), nil)
	if err != nil {
		// CreateRequest only needs the serial and the issuer.
		e.t.Fatal(err)
	}
	var resp *http.Response
	if post {
		resp, err = http.Post(e.http.URL+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
	} else {
		// Raw base64, as many clients send it: "/" and "+" unescaped,
		// so the path may hold "//".
		resp, err = http.Get(e.http.URL + "/ocsp/" + base64.StdEncoding.EncodeToString(req))
	}
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Set-Cookie") != "" {
		e.t.Fatalf("OCSP: %d, Set-Cookie %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
	r, err := ocsp.ParseResponseForCert(body, leaf, e.auth.IssuingCert())
	if err != nil {
		e.t.Fatalf("OCSP response: %v", err)
	}
	return r
}

func (e *certEnv) crl() *x509.RevocationList {
	e.t.Helper()
	resp, err := http.Get(e.http.URL + "/crl/" + e.auth.IssuerID() + ".crl")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		e.t.Fatalf("CRL: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	crl, err := x509.ParseRevocationList(body)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(e.auth.IssuingCert()); err != nil {
		e.t.Fatal(err)
	}
	return crl
}

func TestCertificatesListDetailDownloads(t *testing.T) {
	e := newCertEnv(t)
	u, pw := e.addUser("req@example.com", portal.RoleUser, "Example Corp")
	c := e.client()
	c.signIn(u.Email, pw)
	if r := c.get("/certificates"); r.status != 200 || !strings.Contains(r.body, "No certificates yet") {
		t.Fatalf("empty list: %d", r.status)
	}
	cert := e.issue(u, "jane@example.com")
	id := strconv.FormatInt(cert.ID, 10)
	r := c.get("/certificates")
	if r.status != 200 || !strings.Contains(r.body, cert.Serial) || !strings.Contains(r.body, "/certificates/"+id) {
		t.Fatalf("list does not show the certificate: %d", r.status)
	}
	r = c.get("/certificates/" + id)
	for _, want := range []string{cert.Serial, "jane@example.com", "CN=jane@example.com", "mailbox-validated strict", Fingerprint(cert.DER), "Valid", "Revoke certificate"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("detail page lacks %q", want)
		}
	}
	pemResp := c.get("/certificates/" + id + "/download/pem")
	if b, _ := pem.Decode([]byte(pemResp.body)); b == nil || !bytes.Equal(b.Bytes, cert.DER) || !strings.Contains(pemResp.header.Get("Content-Disposition"), ".pem") {
		t.Errorf("PEM download: %d %q", pemResp.status, pemResp.header.Get("Content-Disposition"))
	}
	if d := c.get("/certificates/" + id + "/download/der"); d.body != string(cert.DER) || d.header.Get("Content-Type") != "application/pkix-cert" {
		t.Errorf("DER download: %d %s", d.status, d.header.Get("Content-Type"))
	}
	p7 := c.get("/certificates/" + id + "/download/p7b")
	if p7.status != 200 || !bytes.Contains([]byte(p7.body), cert.DER) || !bytes.Contains([]byte(p7.body), e.auth.IssuingDER()) {
		t.Errorf("p7b download lacks the certificate or the issuing CA: %d", p7.status)
	}
	if r := c.get("/certificates/" + id + "/download/pfx"); r.status != http.StatusUnprocessableEntity {
		t.Errorf("unknown format: %d", r.status)
	}
	// NL
	c.get("/lang/nl?next=/certificates")
	if r := c.get("/certificates/" + id); !strings.Contains(r.body, "Certificaat intrekken") {
		t.Errorf("no Dutch page")
	}
}

func TestCertificatesOfAnotherAccountAre404(t *testing.T) {
	e := newCertEnv(t)
	owner, _ := e.addUser("req@example.com", portal.RoleAccountAdmin, "Example Corp")
	other, pw := e.addUser("eve@other.test", portal.RoleAccountAdmin, "Other Ltd")
	cert := e.issue(owner, "jane@example.com")
	id := strconv.FormatInt(cert.ID, 10)
	c := e.client()
	c.signIn(other.Email, pw)
	for _, p := range []string{"/certificates/" + id, "/certificates/" + id + "/download/pem", "/certificates/" + id + "/download/der",
		"/certificates/" + id + "/download/p7b", "/certificates/999999", "/certificates/abc"} {
		if r := c.get(p); r.status != http.StatusNotFound || strings.Contains(r.body, cert.Serial) {
			t.Errorf("GET %s as another account: %d", p, r.status)
		}
	}
	if r := c.post("/certificates", "/certificates/"+id+"/revoke", url.Values{"reason": {"keyCompromise"}}); r.status != http.StatusNotFound {
		t.Errorf("revoke as another account: %d", r.status)
	}
	if r := c.get("/certificates"); strings.Contains(r.body, cert.Serial) {
		t.Error("another account's list shows the certificate")
	}
	key, _, err := e.db.CreateAPIKey(context.Background(), other.AccountID, other.ID, "t")
	if err != nil {
		t.Fatal(err)
	}
	api := map[string]string{APIKeyHeader: key, "Content-Type": "application/json"}
	for _, p := range []string{"/api/v1/certificate/" + id, "/api/v1/certificate/" + id + "/download/format/pem"} {
		if r := c.do("GET", p, nil, api); r.status != http.StatusNotFound || !strings.Contains(r.body, `"not_found"`) {
			t.Errorf("API GET %s as another account: %d %s", p, r.status, r.body)
		}
	}
	if r := e.apiPut(key, "/api/v1/certificate/"+id+"/revoke", `{"reason":"keyCompromise"}`); r.status != http.StatusNotFound {
		t.Errorf("API revoke as another account: %d", r.status)
	}
	if got, _ := e.db.Certificate(context.Background(), nil, owner.AccountID, cert.ID); got.Status != "issued" {
		t.Errorf("status %s after another account's attempts", got.Status)
	}
}

func (e *certEnv) apiPut(key, path, body string) resp {
	e.t.Helper()
	req, _ := http.NewRequest("PUT", e.http.URL+path, strings.NewReader(body))
	req.Header.Set(APIKeyHeader, key)
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{status: r.StatusCode, body: string(b), header: r.Header}
}

func TestRevokeFromThePageUpdatesCRLAndOCSP(t *testing.T) {
	e := newCertEnv(t)
	req, pw := e.addUser("req@example.com", portal.RoleUser, "Example Corp")
	colleague, pw2 := e.addUser("col@example.com", portal.RoleUser, "Example Corp")
	cert := e.issue(req, "jane@example.com")
	id := strconv.FormatInt(cert.ID, 10)

	if st := e.ocspStatus(cert.Serial, true); st.Status != ocsp.Good {
		t.Fatalf("OCSP before revocation: %d", st.Status)
	}
	if st := e.ocspStatus("1234567890ABCDEF1234", false); st.Status != ocsp.Unknown {
		t.Errorf("OCSP for a serial never issued: %d, want unknown", st.Status)
	}
	// A GET whose base64 holds "/" (often "//" after the host part is
	// joined) reaches the responder untouched.
	for i := int64(1); i < 5000; i++ {
		s := strings.ToUpper(big.NewInt(i*7919 + 1<<40).Text(16))
		n, _ := new(big.Int).SetString(s, 16)
		req, _ := ocsp.CreateRequest(&x509.Certificate{SerialNumber: n}, e.auth.IssuingCert(), nil)
		if b := base64.StdEncoding.EncodeToString(req); strings.Contains(b, "/") && strings.Contains(b, "+") {
			if st := e.ocspStatus(s, false); st.Status != ocsp.Unknown {
				t.Errorf("OCSP GET with / and + in the path: %d", st.Status)
			}
			break
		}
	}

	// A user who did not order it (and is not an administrator) may not.
	cc := e.client()
	cc.signIn(colleague.Email, pw2)
	if r := cc.get("/certificates/" + id); strings.Contains(r.body, "Revoke certificate") {
		t.Error("the revoke form is shown to a user who may not revoke")
	}
	if r := cc.post("/certificates/"+id, "/certificates/"+id+"/revoke", url.Values{"reason": {"keyCompromise"}}); r.status != http.StatusForbidden {
		t.Errorf("colleague revokes: %d", r.status)
	}

	c := e.client()
	c.signIn(req.Email, pw)
	r := c.post("/certificates/"+id, "/certificates/"+id+"/revoke", url.Values{"reason": {""}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Choose a revocation reason") {
		t.Errorf("no reason: %d", r.status)
	}
	if r := c.post("/certificates/"+id, "/certificates/"+id+"/revoke", url.Values{"reason": {"privilegeWithdrawn"}}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("a CA-only reason from a customer: %d", r.status)
	}
	e.clock.Advance(time.Minute)
	r = c.post("/certificates/"+id, "/certificates/"+id+"/revoke", url.Values{"reason": {"keyCompromise"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	page := c.get("/certificates/" + id)
	if !strings.Contains(page.body, "has been revoked") || !strings.Contains(page.body, "Key compromise") || strings.Contains(page.body, `action="/certificates/`+id+`/revoke"`) {
		t.Errorf("page after revocation does not show it")
	}
	if list := c.get("/certificates"); !strings.Contains(list.body, "Revoked") {
		t.Error("the list does not show Revoked")
	}
	if op := c.get("/orders/" + strconv.FormatInt(cert.OrderID, 10)); !strings.Contains(op.body, "Certificate revoked") {
		t.Errorf("the order page does not show the revocation: %d", op.status)
	}
	st := e.ocspStatus(cert.Serial, false)
	if st.Status != ocsp.Revoked || st.RevocationReason != ocsp.KeyCompromise || !st.RevokedAt.Equal(e.clock.Now().Truncate(time.Second)) {
		t.Errorf("OCSP after revocation: status %d reason %d at %v", st.Status, st.RevocationReason, st.RevokedAt)
	}
	found := false
	for _, rc := range e.crl().RevokedCertificateEntries {
		if ordering.SerialHex(rc.SerialNumber) == cert.Serial && rc.ReasonCode == 1 {
			found = true
		}
	}
	if !found {
		t.Error("the CRL does not list the revoked certificate with keyCompromise")
	}
	if r := c.post("/certificates/"+id, "/certificates/"+id+"/revoke", url.Values{"reason": {"keyCompromise"}}); r.status != http.StatusSeeOther {
		t.Errorf("second revocation: %d", r.status)
	}
	var n int
	e.db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE action = 'certificate.revoked' AND object_id = ?`, cert.ID).Scan(&n)
	if n != 1 {
		t.Errorf("%d audit entries for the revocation", n)
	}
}

func TestAPIDownloadAndRevoke(t *testing.T) {
	e := newCertEnv(t)
	admin, _ := e.addUser("admin@example.com", portal.RoleAccountAdmin, "Example Corp")
	requestor, _ := e.addUser("req@example.com", portal.RoleUser, "Example Corp")
	cert := e.issue(requestor, "jane@example.com")
	id := strconv.FormatInt(cert.ID, 10)
	key, _, err := e.db.CreateAPIKey(context.Background(), admin.AccountID, admin.ID, "t")
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	hdr := map[string]string{APIKeyHeader: key}
	if r := c.do("GET", "/api/v1/certificate/"+id+"/download/format/der", nil, hdr); r.body != string(cert.DER) {
		t.Errorf("API DER: %d", r.status)
	}
	if r := c.do("GET", "/api/v1/certificate/"+id+"/download/format/p7b", nil, hdr); r.status != 200 || r.header.Get("Content-Type") != "application/pkcs7-mime" {
		t.Errorf("API p7b: %d %s", r.status, r.header.Get("Content-Type"))
	}
	if r := c.do("GET", "/api/v1/certificate/"+id+"/download/format/pem", nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("no key: %d", r.status)
	}
	if r := e.apiPut(key, "/api/v1/certificate/"+id+"/revoke", `{"reason":"certificateHold"}`); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "keyCompromise") {
		t.Errorf("bad reason: %d %s", r.status, r.body)
	}
	if r := e.apiPut(key, "/api/v1/certificate/"+id+"/revoke", `{"reason":"superseded","comments":"rekeyed"}`); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := e.apiPut(key, "/api/v1/certificate/"+id+"/revoke", `{"reason":"superseded"}`); r.status != http.StatusConflict {
		t.Errorf("second revoke: %d", r.status)
	}
	r := c.do("GET", "/api/v1/certificate/"+id, nil, hdr)
	if !strings.Contains(r.body, `"status":"revoked"`) || !strings.Contains(r.body, `"revocation_reason":"superseded"`) {
		t.Errorf("API get: %s", r.body)
	}
	if st := e.ocspStatus(cert.Serial, true); st.Status != ocsp.Revoked || st.RevocationReason != ocsp.Superseded {
		t.Errorf("OCSP: %d %d", st.Status, st.RevocationReason)
	}
	// The order in the API says so too (the recipient stays "issued").
	rc := `"status":"issued","certificate_id":` + id + `,"certificate_status":"revoked"`
	if r := c.do("GET", "/api/v1/order/certificate/"+strconv.FormatInt(cert.OrderID, 10), nil, hdr); r.status != 200 || !strings.Contains(r.body, rc) {
		t.Errorf("API order: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/api/v1/order/certificate", nil, hdr); r.status != 200 || !strings.Contains(r.body, rc) {
		t.Errorf("API order list: %d %s", r.status, r.body)
	}
}

func TestPublicCAPageAndFiles(t *testing.T) {
	e := newCertEnv(t)
	c := e.client()
	r := c.get("/ca")
	if r.status != 200 || !strings.Contains(r.body, Fingerprint(e.auth.RootDER())) || !strings.Contains(r.body, "/ca/root.crt") {
		t.Fatalf("/ca: %d", r.status)
	}
	for path, want := range map[string][]byte{"/ca/root.crt": e.auth.RootDER(), "/ca/issuing.crt": e.auth.IssuingDER()} {
		r := c.get(path)
		if r.body != string(want) || r.header.Get("Content-Type") != "application/pkix-cert" || r.header.Get("Set-Cookie") != "" {
			t.Errorf("%s: %d %s", path, r.status, r.header.Get("Content-Type"))
		}
	}
	if r := c.get("/ca/issuing.pem"); !strings.Contains(r.body, "BEGIN CERTIFICATE") {
		t.Errorf("/ca/issuing.pem: %d", r.status)
	}
	if crl := e.crl(); len(crl.RevokedCertificateEntries) != 0 {
		t.Errorf("new CA's CRL lists %d", len(crl.RevokedCertificateEntries))
	}
	if r := c.get("/crl/" + e.auth.RootID() + ".crl"); r.status != 200 {
		t.Errorf("root CRL: %d", r.status)
	}
	for _, p := range []string{"/crl/0000.crl", "/crl/" + e.auth.IssuerID(), "/ca/nothing.crt"} {
		if r := c.get(p); r.status != http.StatusNotFound {
			t.Errorf("%s: %d", p, r.status)
		}
	}
	// A malformed OCSP request gets the malformedRequest response.
	resp, err := http.Post(e.http.URL+"/ocsp", "application/ocsp-request", strings.NewReader("junk"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, ocsp.MalformedRequestErrorResponse) {
		t.Errorf("malformed OCSP: %d %x", resp.StatusCode, body)
	}
}

func TestStaffSeeHeldIssuancesWithLintNames(t *testing.T) {
	e := newCertEnv(t)
	ctx := context.Background()
	u, _ := e.addUser("req@example.com", portal.RoleUser, "Example Corp")
	cert := e.issue(u, "jane@example.com")
	// A refused issuance as the pipeline records it.
	c := portal.Certificate{AccountID: u.AccountID, OrderID: cert.OrderID, RecipientID: cert.RecipientID, PlanPeriod: 2, Serial: "ABCDEF0123456789AB", Emails: []string{"jane@example.com"}}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.BeginIssuance(ctx, tx, &c, e.auth.IssuerID()) }); err != nil {
		t.Fatal(err)
	}
	if err := e.db.FailIssuance(ctx, nil, c.ID, []string{"e_rsa_key_usage_strict"}, "pre-issuance lint"); err != nil {
		t.Fatal(err)
	}
	staff, pw := e.addUser("agent@certdesk.test", portal.RoleValidationAgent, "")
	sc := e.client()
	sc.signIn(staff.Email, pw)
	if r := sc.get("/staff/certificates/held"); r.status != 200 || !strings.Contains(r.body, "e_rsa_key_usage_strict") {
		t.Errorf("staff page: %d", r.status)
	}
	cu, cpw := e.addUser("other@example.com", portal.RoleAccountAdmin, "Example Corp")
	_ = cu
	cc := e.client()
	cc.signIn("other@example.com", cpw)
	if r := cc.get("/staff/certificates/held"); r.status != http.StatusForbidden {
		t.Errorf("customer on the staff page: %d", r.status)
	}
}

// A CA administrator releases a held issuance after review; issuance runs
// again through the pipeline (lint included) and the certificate is
// issued. Agents see the list but cannot release.
func TestCAAdminReleasesHeldIssuance(t *testing.T) {
	e := newCertEnv(t)
	ctx := context.Background()
	u, _ := e.addUser("req@example.com", portal.RoleUser, "Example Corp")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
	now := e.clock.Now()
	o := portal.Order{AccountID: u.AccountID, UserID: u.ID, Product: portal.ProductIndividual, SignatureHash: portal.SHA256,
		PeriodStart: now, PeriodEnd: now.AddDate(1, 0, 0), PaymentMethod: portal.PayContract, AmountCents: 1000,
		AgreementVersion: "t", AgreedAt: now, Recipients: []portal.Recipient{{Email: "held@example.com", CommonName: "held@example.com",
			Status: portal.RecipientReady, CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}}}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.InsertOrder(ctx, tx, &o, "") }); err != nil {
		t.Fatal(err)
	}
	rid := o.Recipients[0].ID
	// held as the pipeline holds it: a failed certificate row and the recipient held
	c := portal.Certificate{AccountID: u.AccountID, OrderID: o.ID, RecipientID: rid, PlanPeriod: 1, Serial: "0A1B2C3D4E5F60718293", Emails: []string{"held@example.com"}}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.BeginIssuance(ctx, tx, &c, e.auth.IssuerID()) }); err != nil {
		t.Fatal(err)
	}
	if err := e.db.FailIssuance(ctx, nil, c.ID, nil, "CAA issuemail names another CA"); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.db.HoldRecipient(ctx, nil, rid, "issuance held for review"); err != nil || !ok {
		t.Fatalf("hold: %v %v", ok, err)
	}
	path := "/staff/recipients/" + strconv.FormatInt(rid, 10) + "/release"

	agent, apw := e.addUser("agent@certdesk.test", portal.RoleValidationAgent, "")
	ac := e.client()
	ac.signIn(agent.Email, apw)
	if r := ac.get("/staff/certificates/held"); strings.Contains(r.body, `action="`+path+`"`) {
		t.Error("an agent is offered the release")
	}
	if r := ac.post("/staff/certificates/held", path, nil); r.status != http.StatusForbidden {
		t.Errorf("agent releases: %d", r.status)
	}

	admin, pw := e.addUser("ca-admin@certdesk.test", portal.RoleCAAdmin, "")
	sc := e.client()
	sc.signIn(admin.Email, pw)
	if r := sc.get("/staff/certificates/held"); !strings.Contains(r.body, `action="`+path+`"`) {
		t.Fatal("the CA admin is not offered the release")
	}
	r := sc.post("/staff/certificates/held", path, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("release: %d", r.status)
	}
	if page := sc.get("/staff/certificates/held"); !strings.Contains(page.body, "Released: the certificate has been issued.") || strings.Contains(page.body, `action="`+path+`"`) {
		t.Error("no issued message, or still releasable")
	}
	rec, _ := e.db.Recipient(ctx, nil, rid)
	if rec.Status != portal.RecipientIssued || rec.CertificateID == 0 {
		t.Fatalf("after release: %s cert %d", rec.Status, rec.CertificateID)
	}
	// a second release changes nothing
	sc.post("/staff/certificates/held", path, nil)
	if page := sc.get("/staff/certificates/held"); !strings.Contains(page.body, "no longer held") {
		t.Error("second release not reported")
	}
	var n int
	_ = e.db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE action = 'issuance.released'`).Scan(&n)
	if n != 1 {
		t.Errorf("audit entries: %d", n)
	}
}

// The dashboard's figures count the account's own objects: an issued
// certificate shows as 1, another account's as nothing.
func TestDashboardFigures(t *testing.T) {
	e := newCertEnv(t)
	u, pw := e.addUser("req@example.com", portal.RoleAccountAdmin, "Example Corp")
	c := e.client()
	c.signIn(u.Email, pw)
	tile := regexp.MustCompile(`<span class="tile-value">(\d+)</span>\s*<span class="tile-label">Issued certificates</span>`)
	if m := tile.FindStringSubmatch(c.get("/dashboard").body); m == nil || m[1] != "0" {
		t.Fatalf("before: %v", m)
	}
	e.issue(u, "jane@example.com")
	other, _ := e.addUser("x@other.test", portal.RoleUser, "Other Inc")
	e.issue(other, "x@other.test")
	if m := tile.FindStringSubmatch(c.get("/dashboard").body); m == nil || m[1] != "1" {
		t.Fatalf("after: %v", m)
	}
}

// Releasing a held KeyGen issuance (no CSR left: the page dropped its key)
// sends the recipient back to key generation with a new link, and the page
// says so.
func TestCAAdminReleasesHeldKeyGenIssuance(t *testing.T) {
	e := newCertEnv(t)
	ctx := context.Background()
	e.srv.KeyGen = &ordering.LinkService{Store: e.db, Exchanger: e.pipe, Clock: e.clock, BaseURL: "http://127.0.0.1", Log: e.pipe.Log}
	u, _ := e.addUser("req@example.com", portal.RoleUser, "Example Corp")
	now := e.clock.Now()
	o := portal.Order{AccountID: u.AccountID, UserID: u.ID, Product: portal.ProductIndividual, SignatureHash: portal.SHA256,
		PeriodStart: now, PeriodEnd: now.AddDate(1, 0, 0), PaymentMethod: portal.PayContract, AmountCents: 1000,
		AgreementVersion: "t", AgreedAt: now, Recipients: []portal.Recipient{{Email: "kg@example.com", CommonName: "kg@example.com",
			Status: portal.RecipientAwaitingKeyGen}}}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.InsertOrder(ctx, tx, &o, "") }); err != nil {
		t.Fatal(err)
	}
	rid := o.Recipients[0].ID
	// As a held KeyGen exchange leaves it: held, no CSR.
	if _, err := e.db.ExecContext(ctx, `UPDATE recipients SET status = 'held', held_reason = 'payment refused' WHERE id = ?`, rid); err != nil {
		t.Fatal(err)
	}
	admin, pw := e.addUser("ca-admin@certdesk.test", portal.RoleCAAdmin, "")
	sc := e.client()
	sc.signIn(admin.Email, pw)
	path := "/staff/recipients/" + strconv.FormatInt(rid, 10) + "/release"
	if r := sc.post("/staff/certificates/held", path, nil); r.status != http.StatusSeeOther {
		t.Fatalf("release: %d", r.status)
	}
	if page := sc.get("/staff/certificates/held"); !strings.Contains(page.body, "the recipient was sent a new KeyGen link") {
		t.Error("no new-link message")
	}
	if rec, _ := e.db.Recipient(ctx, nil, rid); rec.Status != portal.RecipientAwaitingKeyGen {
		t.Fatalf("after release: %s", rec.Status)
	}
	if m, err := e.db.LatestOutboxTo(ctx, "kg@example.com", ordering.KindKeyGenLink); err != nil || !strings.Contains(m.Text, "http://127.0.0.1/keygen/") {
		t.Fatalf("no KeyGen link email: %v", err)
	}
}
