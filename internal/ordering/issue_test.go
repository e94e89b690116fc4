package ordering_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"certdesk/internal/ca"
	"certdesk/internal/mail"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/internal/validation"
	"certdesk/store"
)

var _ ordering.IssueStore = (*store.DB)(nil)
var _ ordering.Authority = (*ca.Authority)(nil)

type settle struct{ account, order, amount int64 }

type fakeSettler struct {
	mu    sync.Mutex
	calls []settle
	err   error
}

func (f *fakeSettler) Settle(ctx context.Context, tx *sql.Tx, account, order, amount int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.calls = append(f.calls, settle{account, order, amount})
	return nil
}

func (f *fakeSettler) total() (n int, sum int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c.amount > 0 {
			n++
		}
		sum += c.amount
	}
	return n, sum
}

type fakeCAA struct {
	allowed bool
	reason  string
	err     error
}

func (f fakeCAA) CheckCAAIssueMail(ctx context.Context, domain string) (bool, string, error) {
	return f.allowed, f.reason, f.err
}

// lintRefusing is the real CA with a signer that always reports a lint
// finding (the ca package proves real findings stop signing; this proves
// what the pipeline does with one).
type lintRefusing struct {
	*ca.Authority
	calls int
}

func (l *lintRefusing) Issue(req ca.IssueRequest) (*ca.Issued, error) {
	l.calls++
	return nil, &ca.LintError{Findings: []ca.LintFinding{{Name: "e_subject_common_name_not_from_san", Status: "error"}}}
}

type issueEnv struct {
	db    *store.DB
	auth  *ca.Authority
	p     *ordering.Pipeline
	bill  *fakeSettler
	clock *portal.FixedClock
	acct  int64
	user  portal.User
	orgID int64
	t     *testing.T
}

// testCA makes a CA hierarchy for a test (P-256 issuing key: fast).
func testCA(t *testing.T, clock portal.Clock) *ca.Authority {
	t.Helper()
	cfg := ca.Config{BaseURL: "http://127.0.0.1:8080", AllowInternalNames: true}
	a, err := ca.Init(t.TempDir(), ca.InitOptions{Config: cfg, IssuingKeyType: ca.KeyP256}, clock)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newIssueEnv(t *testing.T) *issueEnv {
	t.Helper()
	ctx := context.Background()
	clock := portal.NewFixedClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "i.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, _ := db.CreateAccount(ctx, "Example Corp")
	u, err := db.CreateUser(ctx, portal.User{AccountID: a.ID, Email: "req@example.com", Name: "Req", Role: portal.RoleUser, PasswordHash: "x", Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }
	res, err := db.Exec(`INSERT INTO organizations(account_id, legal_name, country, registration, status, validated_at, expires_at, created_at)
		VALUES (?, 'Example Corp B.V.', 'NL', '12345678', 'validated', ?, ?, ?)`, a.ID, ts(now), ts(now.Add(portal.OrgValidationReuse)), ts(now))
	if err != nil {
		t.Fatal(err)
	}
	orgID, _ := res.LastInsertId()
	// The organization's domain, validated now (SBR 4.2.1: issuance checks
	// that the validations it relies on are still current).
	if _, err := db.Exec(`INSERT INTO domains(account_id, organization_id, name, method, status, validated_at, expires_at, created_at)
		VALUES (?, ?, 'example.com', 'dns_txt', 'validated', ?, ?, ?)`, a.ID, orgID, ts(now), ts(now.AddDate(0, 0, 398)), ts(now)); err != nil {
		t.Fatal(err)
	}
	auth := testCA(t, clock)
	e := &issueEnv{db: db, auth: auth, bill: &fakeSettler{}, clock: clock, acct: a.ID, user: u, orgID: orgID, t: t}
	e.p = &ordering.Pipeline{Store: db, CA: auth, Billing: e.bill, Clock: clock, BaseURL: "http://127.0.0.1:8080",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Mailboxes: testValidation(db, clock)}
	return e
}

func newCSR(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// order stores a pending order of product with one recipient per email,
// each with the given status (ready recipients get a CSR).
func (e *issueEnv) order(product portal.ProductID, end time.Time, st portal.RecipientStatus, emails ...string) portal.Order {
	e.t.Helper()
	now := e.clock.Now()
	o := portal.Order{AccountID: e.acct, UserID: e.user.ID, Product: product, OrganizationID: e.orgID, SignatureHash: portal.SHA256,
		PeriodStart: now, PeriodEnd: end, PaymentMethod: portal.PayContract, AmountCents: 1000 * int64(len(emails)),
		AdditionalEmails: []string{"boss@example.com"}, AgreementVersion: "t", AgreedAt: now}
	for _, em := range emails {
		r := portal.Recipient{Email: em, CommonName: em, Status: st}
		if st == portal.RecipientReady {
			r.CSR = newCSR(e.t)
		}
		o.Recipients = append(o.Recipients, r)
	}
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error { return e.db.InsertOrder(context.Background(), tx, &o, "") })
	if err != nil {
		e.t.Fatal(err)
	}
	e.validateMailboxes(emails...)
	return o
}

var mailboxSeq atomic.Int64

// testValidation is the validation service as the pipeline uses it: the
// mailbox re-check at issuance and the new confirmation email.
func testValidation(db *store.DB, clock portal.Clock) *validation.Service {
	return &validation.Service{Store: db, Clock: clock, BaseURL: "http://127.0.0.1:8080",
		Compose: func(lang, subject string, body []string, data map[string]any, links []validation.MailLink) (portal.Email, error) {
			ml := make([]mail.Link, len(links))
			for i, l := range links {
				ml[i] = mail.Link{Label: l.Label, URL: l.URL}
			}
			return mail.Compose(lang, subject, body, data, ml)
		}}
}

// validateMailboxes records a mailbox validation of each address now (the
// mailbox-validated product checks one of at most 30 days at issuance).
func (e *issueEnv) validateMailboxes(emails ...string) {
	e.t.Helper()
	now := e.clock.Now().UTC().Format("2006-01-02T15:04:05.000000000Z")
	for _, em := range emails {
		if _, err := e.db.Exec(`INSERT INTO mailbox_validations(account_id, email, token_hash, created_at, expires_at, used_at, validated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, e.acct, strings.ToLower(em), fmt.Sprintf("test-%s-%d", em, mailboxSeq.Add(1)), now, now, now, now); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *issueEnv) recipient(id int64) portal.Recipient {
	e.t.Helper()
	r, err := e.db.Recipient(context.Background(), nil, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *issueEnv) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(q, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *issueEnv) crlSerials() map[string]int {
	e.t.Helper()
	der, err := e.p.CurrentCRL(context.Background(), e.auth.IssuerID())
	if err != nil {
		e.t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(e.auth.IssuingCert()); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range crl.RevokedCertificateEntries {
		out[ordering.SerialHex(r.SerialNumber)] = r.ReasonCode
	}
	return out
}

func TestIssueRecipientIssuesSettlesAndMails(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	end := e.clock.Now().AddDate(1, 0, 0)
	o := e.order(portal.ProductOrganization, end, portal.RecipientReady, "jane@example.com")
	rid := o.Recipients[0].ID

	out, err := e.p.Issue(ctx, rid)
	if err != nil || out != ordering.Issued {
		t.Fatalf("Issue: %v %v", out, err)
	}
	r := e.recipient(rid)
	if r.Status != portal.RecipientIssued || r.CertificateID == 0 {
		t.Fatalf("recipient after issuance: %+v", r)
	}
	c, err := e.db.Certificate(ctx, nil, e.acct, r.CertificateID)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	if ordering.SerialHex(leaf.SerialNumber) != c.Serial || leaf.SerialNumber.BitLen() < 64 {
		t.Errorf("stored serial %s, certificate serial %s", c.Serial, ordering.SerialHex(leaf.SerialNumber))
	}
	if err := leaf.CheckSignatureFrom(e.auth.IssuingCert()); err != nil {
		t.Errorf("certificate does not verify: %v", err)
	}
	if len(leaf.EmailAddresses) != 1 || leaf.EmailAddresses[0] != "jane@example.com" {
		t.Errorf("SAN: %v", leaf.EmailAddresses)
	}
	if !strings.Contains(c.Subject, "O=Example Corp B.V.") || !strings.Contains(c.Subject, "organizationIdentifier=NTRNL-12345678") || !strings.Contains(c.Subject, "C=NL") {
		t.Errorf("subject %q lacks the organization, its identifier or country", c.Subject)
	}
	if leaf.NotAfter.After(end) {
		t.Errorf("notAfter %v past the order's end %v", leaf.NotAfter, end)
	}
	if c.Status != "issued" || c.FingerprintSHA == "" || !strings.Contains(c.Profile, "organization-validated strict") {
		t.Errorf("row: %+v", c.Certificate)
	}
	if n, sum := e.bill.total(); n != 1 || sum != 1000 {
		t.Errorf("settled %d times, %d cents; want once, 1000", n, sum)
	}
	got, err := e.db.Order(ctx, nil, e.acct, o.ID)
	if err != nil || got.Status != portal.OrderCompleted {
		t.Errorf("order status %s (%v), want completed", got.Status, err)
	}

	msg, err := e.db.LatestOutboxTo(ctx, "jane@example.com", ordering.KindCertIssued)
	if err != nil {
		t.Fatalf("no issued email to the recipient: %v", err)
	}
	if !strings.Contains(msg.Subject, "jane@example.com") || len(msg.Attachments) != 2 {
		t.Fatalf("issued email: %q with %d attachments", msg.Subject, len(msg.Attachments))
	}
	b, _ := pem.Decode(msg.Attachments[0].Data)
	if b == nil || string(b.Bytes) != string(c.DER) {
		t.Errorf("the PEM attachment is not the certificate")
	}
	if !strings.HasSuffix(msg.Attachments[1].Filename, ".p7b") || len(msg.Attachments[1].Data) < len(c.DER) {
		t.Errorf("the PKCS#7 attachment: %s, %d bytes", msg.Attachments[1].Filename, len(msg.Attachments[1].Data))
	}
	for _, to := range []string{"req@example.com", "boss@example.com"} {
		if _, err := e.db.LatestOutboxTo(ctx, to, ordering.KindCertIssuedNotice); err != nil {
			t.Errorf("no notice to %s: %v", to, err)
		}
	}

	// Idempotent: a second call changes nothing.
	out, err = e.p.Issue(ctx, rid)
	if err != nil || out != ordering.Skipped {
		t.Errorf("second Issue: %v %v", out, err)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ?`, rid); n != 1 {
		t.Errorf("%d certificate rows, want 1", n)
	}
}

func TestFiftyConcurrentAttemptsIssueOnce(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady, "one@example.com")
	rid := o.Recipients[0].ID
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	outs := make(chan ordering.Outcome, 50)
	start := make(chan struct{})
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out, err := e.p.Issue(ctx, rid)
			errs <- err
			outs <- out
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	close(outs)
	for err := range errs {
		if err != nil {
			t.Errorf("an attempt returned an error: %v", err)
		}
	}
	issued := 0
	for o := range outs {
		if o == ordering.Issued {
			issued++
		}
	}
	if issued != 1 {
		t.Errorf("%d attempts report Issued, want 1", issued)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ?`, rid); n != 1 {
		t.Errorf("%d certificate rows (any status), want exactly 1", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ? AND status = 'issued' AND der IS NOT NULL`, rid); n != 1 {
		t.Errorf("%d issued certificates, want 1", n)
	}
	if n, _ := e.bill.total(); n != 1 {
		t.Errorf("settled %d times, want 1", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM outbox WHERE kind = ? AND to_addr = 'one@example.com'`, ordering.KindCertIssued); n != 1 {
		t.Errorf("%d issued emails, want 1", n)
	}
}

func TestLintFindingHoldsAndSignsNothing(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	ref := &lintRefusing{Authority: e.auth}
	e.p.CA = ref
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady, "lint@example.com")
	rid := o.Recipients[0].ID
	out, err := e.p.Issue(ctx, rid)
	if err != nil || out != ordering.Held {
		t.Fatalf("Issue: %v %v, want Held", out, err)
	}
	r := e.recipient(rid)
	if r.Status != portal.RecipientHeld || r.HeldReason != ordering.HeldForReview {
		t.Errorf("recipient: %s %q", r.Status, r.HeldReason)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE der IS NOT NULL`); n != 0 {
		t.Errorf("%d certificates with DER after a lint refusal", n)
	}
	held, err := e.db.HeldIssuances(ctx, 10)
	if err != nil || len(held) != 1 || held[0].Status != "failed" || strings.Join(held[0].LintFindings, ",") != "e_subject_common_name_not_from_san" {
		t.Fatalf("staff view: %+v %v", held, err)
	}
	if n, _ := e.bill.total(); n != 0 {
		t.Errorf("settled %d times after a refusal", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM outbox`); n != 0 {
		t.Errorf("%d emails after a refusal", n)
	}
	// A failed (never signed) serial is not on the CRL.
	if s := e.crlSerials(); len(s) != 0 {
		t.Errorf("CRL lists %v", s)
	}
	// Held recipients are not retried by the sweep.
	if n := e.p.IssueReady(ctx); n != 0 || ref.calls != 1 {
		t.Errorf("sweep issued %d, signer called %d times", n, ref.calls)
	}
}

func TestCAAIssuemail(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady, "a@example.com", "b@example.com")

	e.p.CAA = fakeCAA{err: errors.New("SERVFAIL")}
	if _, err := e.p.Issue(ctx, o.Recipients[0].ID); err == nil {
		t.Error("a DNS failure must be an error (retry later)")
	}
	if r := e.recipient(o.Recipients[0].ID); r.Status != portal.RecipientReady {
		t.Errorf("after a DNS failure the recipient is %s, want ready", r.Status)
	}

	e.p.CAA = fakeCAA{allowed: false, reason: `issuemail "other-ca.example" at example.com does not name this CA`}
	out, err := e.p.Issue(ctx, o.Recipients[1].ID)
	if err != nil || out != ordering.Held {
		t.Fatalf("Issue: %v %v", out, err)
	}
	r := e.recipient(o.Recipients[1].ID)
	if r.Status != portal.RecipientHeld || !strings.Contains(r.HeldReason, "other-ca.example") {
		t.Errorf("recipient %s %q", r.Status, r.HeldReason)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates`); n != 0 {
		t.Errorf("%d certificate rows after CAA refusals", n)
	}

	e.p.CAA = fakeCAA{allowed: true}
	if out, err := e.p.Issue(ctx, o.Recipients[0].ID); err != nil || out != ordering.Issued {
		t.Errorf("allowed: %v %v", out, err)
	}
}

func TestRecoverRevokesInterruptedSerialAndReissues(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady, "crash@example.com")
	rid := o.Recipients[0].ID
	// A process recorded its intent and died before the completing
	// transaction (it may or may not have signed).
	c := portal.Certificate{AccountID: e.acct, OrderID: o.ID, RecipientID: rid, PlanPeriod: 1, Serial: ordering.SerialHex(ca.NewSerial())}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.BeginIssuance(ctx, tx, &c, e.auth.IssuerID()) }); err != nil {
		t.Fatal(err)
	}
	// While it is fresh, another attempt treats it as in progress.
	if out, err := e.p.Issue(ctx, rid); err != nil || out != ordering.InProgress {
		t.Fatalf("with a fresh intent: %v %v", out, err)
	}
	if n, err := e.p.Recover(ctx); err != nil || n != 0 {
		t.Fatalf("fresh intent recovered: %d %v", n, err)
	}
	e.clock.Advance(2 * time.Minute)
	if n, err := e.p.Recover(ctx); err != nil || n != 1 {
		t.Fatalf("Recover: %d %v", n, err)
	}
	if n := e.p.IssueReady(ctx); n != 1 {
		t.Fatalf("sweep issued %d, want 1", n)
	}
	r := e.recipient(rid)
	if r.Status != portal.RecipientIssued {
		t.Fatalf("recipient %s", r.Status)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ? AND status = 'issued'`, rid); n != 1 {
		t.Errorf("%d issued certificates, want 1", n)
	}
	old, err := e.db.CertificateBySerial(ctx, e.auth.IssuerID(), c.Serial)
	if err != nil || old.Status != "revoked" || old.RevocationReason != 5 {
		t.Errorf("interrupted serial: %+v %v", old, err)
	}
	if reason, ok := e.crlSerials()[c.Serial]; !ok || reason != 5 {
		t.Errorf("the interrupted serial is not on the CRL as cessationOfOperation: %v", e.crlSerials())
	}
	if _, ok := e.crlSerials()[e.serialOf(r.CertificateID)]; ok {
		t.Errorf("the new certificate is on the CRL")
	}
}

func (e *issueEnv) serialOf(certID int64) string {
	c, err := e.db.IssuedCertificate(context.Background(), nil, certID)
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Serial
}

func TestCompletionFailureRevokesTheSignedCertificate(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady, "pay@example.com")
	rid := o.Recipients[0].ID
	e.bill.err = portal.Errorf(portal.EConflict, "no payment was authorized")
	out, err := e.p.Issue(ctx, rid)
	if err != nil || out != ordering.Held {
		t.Fatalf("Issue: %v %v", out, err)
	}
	if r := e.recipient(rid); r.Status != portal.RecipientHeld || !strings.Contains(r.HeldReason, "no payment") {
		t.Errorf("recipient %s %q", r.Status, r.HeldReason)
	}
	var serial string
	var der []byte
	if err := e.db.QueryRow(`SELECT serial, der FROM certificates WHERE recipient_id = ? AND status = 'revoked'`, rid).Scan(&serial, &der); err != nil {
		t.Fatalf("no revoked row with the signed certificate: %v", err)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		t.Errorf("the signed DER was not kept: %v", err)
	}
	if _, ok := e.crlSerials()[serial]; !ok {
		t.Errorf("the undelivered certificate is not on the CRL")
	}
	if n := e.count(`SELECT COUNT(*) FROM outbox`); n != 0 {
		t.Errorf("%d emails for an undelivered certificate", n)
	}
	if rows, _, _ := e.db.ListCertificates(ctx, e.acct, 10, 0); len(rows) != 0 {
		t.Errorf("the customer sees %d undelivered certificates", len(rows))
	}
}

func TestIssueWithCSRAndRevokeUnused(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientAwaitingKeyGen, "kg@example.com")
	rid := o.Recipients[0].ID

	if _, err := e.p.IssueWithCSR(ctx, rid, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"); portal.ErrorCode(err) != portal.EInvalid {
		t.Errorf("private key: %v", err)
	}
	ic, err := e.p.IssueWithCSR(ctx, rid, newCSR(t))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode([]byte(ic.CertificatePEM))
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil || ordering.SerialHex(leaf.SerialNumber) != ic.Serial {
		t.Fatalf("returned certificate: %v", err)
	}
	if len(ic.ChainPEM) != 2 {
		t.Errorf("chain has %d certificates, want issuing CA and root", len(ic.ChainPEM))
	}
	_, err = e.p.IssueWithCSR(ctx, rid, newCSR(t))
	var pe *portal.Error
	if !errors.As(err, &pe) || pe.Code != portal.EConflict || pe.Key != "certs.already_issued" {
		t.Errorf("second KeyGen: %v", err)
	}

	if err := e.p.RevokeUnused(ctx, rid, "new KeyGen link"); err != nil {
		t.Fatal(err)
	}
	r := e.recipient(rid)
	if r.Status != portal.RecipientAwaitingKeyGen || r.CSR != "" || r.CertificateID != 0 || r.PlanPeriod != 1 {
		t.Errorf("after RevokeUnused: %+v", r)
	}
	if reason, ok := e.crlSerials()[ic.Serial]; !ok || reason != 4 {
		t.Errorf("the unused certificate is not on the CRL as superseded")
	}
	ic2, err := e.p.IssueWithCSR(ctx, rid, newCSR(t))
	if err != nil {
		t.Fatal(err)
	}
	if ic2.Serial == ic.Serial {
		t.Error("same serial twice")
	}
	if n, sum := e.bill.total(); n != 1 || sum != 1000 {
		t.Errorf("settled %d times, %d cents: a re-issue must not be charged again", n, sum)
	}
	if got, _ := e.db.Order(ctx, nil, e.acct, o.ID); got.Status != portal.OrderCompleted {
		t.Errorf("order %s after the re-issue", got.Status)
	}
}

func TestRevokeRegeneratesCRL(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady, "rv@example.com")
	if err := e.p.IssueRecipient(ctx, o.Recipients[0].ID); err != nil {
		t.Fatal(err)
	}
	if due, err := e.p.CRLDue(ctx); err != nil || !due {
		t.Errorf("no CRL yet: due %v %v", due, err)
	}
	_ = e.crlSerials() // first CRL
	cid := e.recipient(o.Recipients[0].ID).CertificateID
	if err := e.p.Revoke(ctx, e.acct+1, cid, 1, "x"); portal.ErrorCode(err) != portal.ENotFound {
		t.Errorf("another account revokes: %v", err)
	}
	if err := e.p.Revoke(ctx, e.acct, cid, 6, "x"); portal.ErrorCode(err) != portal.EInvalid {
		t.Errorf("certificateHold accepted: %v", err)
	}
	e.clock.Advance(time.Second)
	if err := e.p.Revoke(ctx, e.acct, cid, 1, "req@example.com"); err != nil {
		t.Fatal(err)
	}
	if reason, ok := e.crlSerials()[e.serialOf(cid)]; !ok || reason != 1 {
		t.Errorf("CRL after revocation: %v", e.crlSerials())
	}
	if due, _ := e.p.CRLDue(ctx); due {
		t.Error("CRL due right after regeneration")
	}
	e.clock.Advance(ordering.CRLRefreshEvery)
	if due, _ := e.p.CRLDue(ctx); !due {
		t.Error("CRL not due after a day")
	}
	if err := e.p.Revoke(ctx, e.acct, cid, 1, "x"); portal.ErrorCode(err) != portal.EConflict {
		t.Errorf("second revocation: %v", err)
	}
	der, _ := e.p.CurrentCRL(ctx, e.auth.IssuerID())
	crl, _ := x509.ParseRevocationList(der)
	if crl.Number.Cmp(big.NewInt(2)) < 0 || crl.NextUpdate.Sub(crl.ThisUpdate) > 10*24*time.Hour {
		t.Errorf("CRL number %v, validity %v (SBR 4.9.7: at most 10 days)", crl.Number, crl.NextUpdate.Sub(crl.ThisUpdate))
	}
}

func TestPlanCertificateStopsAt825Days(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	end := e.clock.Now().AddDate(3, 0, 0)
	o := e.order(portal.ProductIndividual, end, portal.RecipientReady, "plan@example.com")
	if err := e.p.IssueRecipient(ctx, o.Recipients[0].ID); err != nil {
		t.Fatal(err)
	}
	c, err := e.db.IssuedCertificate(ctx, nil, e.recipient(o.Recipients[0].ID).CertificateID)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.NotAfter.Sub(c.NotBefore) + time.Second; d > portal.MaxCertValidity {
		t.Errorf("validity %v exceeds 825 days (SBR 6.3.2)", d)
	}
}

func TestOrgIdentifier(t *testing.T) {
	for _, tc := range []struct{ country, reg, want string }{
		{"NL", "12345678", "NTRNL-12345678"},
		{"nl", " 12345678 ", "NTRNL-12345678"},
		{"NL", "NTRNL-12345678", "NTRNL-12345678"},
		{"DE", "VATDE-123456789", "VATDE-123456789"},
		{"BE", "0123.456.789", "NTRBE-0123.456.789"},
	} {
		if got := ordering.OrgIdentifier(tc.country, tc.reg); got != tc.want {
			t.Errorf("OrgIdentifier(%q, %q) = %q, want %q", tc.country, tc.reg, got, tc.want)
		}
	}
}

// SBR 4.2.1 at issuance: a recipient whose validations were current when
// it became ready but lapsed before issuance (the scheduler runs later, a
// held issuance is released later) goes back to waiting for that
// validation instead of being issued: the domain (398 days), the
// organization (825 days), the mailbox (30 days). Current again, it issues.
func TestIssuanceRechecksLapsedValidations(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	end := e.clock.Now().AddDate(1, 0, 0)
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }
	past := ts(e.clock.Now().Add(-time.Hour))
	cases := []struct {
		name    string
		product portal.ProductID
		lapse   string // SQL that makes the validation lapse
		restore string
		want    portal.RecipientStatus
	}{
		{"domain", portal.ProductOrganization, `UPDATE domains SET expires_at = '` + past + `'`,
			`UPDATE domains SET expires_at = '` + ts(end) + `'`, portal.RecipientAwaitingDomain},
		{"organization", portal.ProductOrganization, `UPDATE organizations SET expires_at = '` + past + `'`,
			`UPDATE organizations SET expires_at = '` + ts(end) + `'`, portal.RecipientAwaitingOrg},
		{"mailbox", portal.ProductIndividual, `UPDATE mailbox_validations SET validated_at = '` + ts(e.clock.Now().AddDate(0, 0, -31)) + `'`,
			`UPDATE mailbox_validations SET validated_at = '` + ts(e.clock.Now()) + `'`, portal.RecipientAwaitingMailbox},
	}
	for _, c := range cases {
		o := e.order(c.product, end, portal.RecipientReady, c.name+"@example.com")
		rid := o.Recipients[0].ID
		if _, err := e.db.Exec(c.lapse); err != nil {
			t.Fatal(err)
		}
		out, err := e.p.Issue(ctx, rid)
		if err != nil || out == ordering.Issued {
			t.Fatalf("%s lapsed: %v %v", c.name, out, err)
		}
		r := e.recipient(rid)
		if r.Status != c.want || r.CertificateID != 0 || r.CSR == "" {
			t.Fatalf("%s lapsed: status %s, certificate %d, CSR kept %v; want %s", c.name, r.Status, r.CertificateID, r.CSR != "", c.want)
		}
		// The address is asked to confirm again.
		mails := e.count(`SELECT COUNT(*) FROM outbox WHERE to_addr = ? AND kind = ?`, r.Email, validation.KindMailboxConfirm)
		if want := map[bool]int{true: 1, false: 0}[c.want == portal.RecipientAwaitingMailbox]; mails != want {
			t.Fatalf("%s lapsed: %d mailbox confirmation emails, want %d", c.name, mails, want)
		}
		if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ?`, rid); n != 0 {
			t.Fatalf("%s lapsed: %d certificate rows", c.name, n)
		}
		// Validated again (advanceRecipients makes it ready): issued.
		if _, err := e.db.Exec(c.restore); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Exec(`UPDATE recipients SET status = 'ready' WHERE id = ?`, rid); err != nil {
			t.Fatal(err)
		}
		if out, err := e.p.Issue(ctx, rid); err != nil || out != ordering.Issued {
			t.Fatalf("%s validated again: %v %v", c.name, out, err)
		}
	}
}
