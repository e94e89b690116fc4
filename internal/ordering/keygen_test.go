package ordering_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"certdesk/internal/ordering"
	"certdesk/internal/portal"
)

var (
	rsaOnce sync.Once
	rsa2048 *rsa.PrivateKey
)

// rsaCSR returns a CSR of a (shared, made once) RSA-2048 key, like the
// one the KeyGen page makes.
func rsaCSR(t testing.TB) string {
	t.Helper()
	rsaOnce.Do(func() {
		var err error
		if rsa2048, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return csrOf(t, rsa2048)
}

func csrOf(t testing.TB, k any) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "kg"},
		SignatureAlgorithm: x509.SHA256WithRSA}, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

type kgEnv struct {
	*issueEnv
	ks *ordering.LinkService
}

func newKGEnv(t *testing.T) *kgEnv {
	e := newIssueEnv(t)
	return &kgEnv{issueEnv: e, ks: &ordering.LinkService{Store: e.db, Exchanger: e.p, Clock: e.clock,
		BaseURL: "http://127.0.0.1:8080", Log: e.p.Log}}
}

var tokenRE = regexp.MustCompile(`http://127\.0\.0\.1:8080/keygen/([a-z2-7]+)`)

// send makes a link the way Service.Advance does and returns the token
// read from the queued email.
func (e *kgEnv) send(o portal.Order, r portal.Recipient) string {
	e.t.Helper()
	ctx := context.Background()
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.ks.SendLink(ctx, tx, o, r) }); err != nil {
		e.t.Fatal(err)
	}
	m, err := e.db.LatestOutboxTo(ctx, r.Email, ordering.KindKeyGenLink)
	if err != nil {
		e.t.Fatalf("no KeyGen email to %s: %v", r.Email, err)
	}
	mm := tokenRE.FindStringSubmatch(m.Text)
	if mm == nil {
		e.t.Fatalf("no link in the email:\n%s", m.Text)
	}
	return mm[1]
}

func linkState(err error) string {
	if err == nil {
		return ordering.LinkUsable
	}
	return ordering.LinkState(err)
}

// A link: 160 random bits stored as a hash only, usable for 30 days (not
// one second more), replaced by a newer link, spent by an issuance.
func TestKeyGenLinkWindows(t *testing.T) {
	e := newKGEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientAwaitingKeyGen, "kg@example.com")
	r := o.Recipients[0]
	start := e.clock.Now()
	tok := e.send(o, r)

	if n := len(tok); n < 32 { // base32: 5 bits a character; 32 characters are 160 bits
		t.Errorf("token %d characters: under 160 bits", n)
	}
	sum := sha256.Sum256([]byte(tok))
	if e.count(`SELECT COUNT(*) FROM keygen_links WHERE token_hash = ?`, hex.EncodeToString(sum[:])) != 1 {
		t.Error("the link is not stored by its SHA-256")
	}
	if e.count(`SELECT COUNT(*) FROM keygen_links WHERE token_hash LIKE ? OR sent_by LIKE ?`, "%"+tok+"%", "%"+tok+"%") != 0 {
		t.Error("the token itself is stored")
	}

	info, err := e.ks.Open(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if info.Recipient.ID != r.ID || !info.Link.ExpiresAt.Equal(start.Add(30*24*time.Hour)) {
		t.Fatalf("info %+v", info.Link)
	}
	e.clock.Set(start.Add(30*24*time.Hour - time.Second))
	if _, err := e.ks.Open(ctx, tok); err != nil {
		t.Errorf("a second before 30 days: %v", err)
	}
	e.clock.Set(start.Add(30 * 24 * time.Hour))
	if st := linkState(func() error { _, err := e.ks.Open(ctx, tok); return err }()); st != ordering.LinkExpired {
		t.Errorf("at 30 days: %s, want expired", st)
	}
	if _, err := e.ks.Exchange(ctx, tok, rsaCSR(t)); linkState(err) != ordering.LinkExpired {
		t.Errorf("exchange with an expired link: %v", err)
	}
	if got := e.recipient(r.ID); got.Status != portal.RecipientAwaitingKeyGen || got.CSR != "" {
		t.Errorf("an expired link changed the recipient: %+v", got)
	}

	// A new link (still expired clock: the new one starts now) kills the old.
	tok2 := e.send(o, r)
	if _, err := e.ks.Open(ctx, tok2); err != nil {
		t.Fatalf("new link: %v", err)
	}
	e.clock.Set(start.Add(31 * 24 * time.Hour))
	tok3 := e.send(o, r)
	if st := linkState(func() error { _, err := e.ks.Open(ctx, tok2); return err }()); st != ordering.LinkReplaced {
		t.Errorf("the older link after a new one: %s, want replaced", st)
	}
	if _, err := e.ks.Exchange(ctx, tok2, rsaCSR(t)); linkState(err) != ordering.LinkReplaced {
		t.Errorf("exchange with a replaced link: %v", err)
	}

	// 31 days on, the address's mailbox validation (30 days, SBR 4.2.1) has
	// lapsed: the exchange is refused before anything is kept, and the
	// recipient waits for a new mailbox validation.
	var pe *portal.Error
	if _, err := e.ks.Exchange(ctx, tok3, rsaCSR(t)); !errors.As(err, &pe) || pe.Key != "keygen.revalidate" {
		t.Fatalf("exchange after the mailbox validation lapsed: %v", err)
	}
	if got := e.recipient(r.ID); got.Status != portal.RecipientAwaitingMailbox || got.CSR != "" {
		t.Fatalf("after a lapsed validation: %s, CSR %d bytes", got.Status, len(got.CSR))
	}
	// Validated again: back to key generation, a new link.
	e.validateMailboxes("kg@example.com")
	if _, err := e.db.ExecContext(ctx, `UPDATE recipients SET status = 'awaiting_key_generation' WHERE id = ?`, r.ID); err != nil {
		t.Fatal(err)
	}
	tok3 = e.send(o, r)

	// Exchange issues and spends the link.
	ic, err := e.ks.Exchange(ctx, tok3, rsaCSR(t))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode([]byte(ic.CertificatePEM))
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil || len(leaf.EmailAddresses) != 1 || leaf.EmailAddresses[0] != "kg@example.com" {
		t.Fatalf("issued certificate: %v %v", err, leaf)
	}
	if k, ok := leaf.PublicKey.(*rsa.PublicKey); !ok || !k.Equal(&rsa2048.PublicKey) {
		t.Error("the certificate is not for the CSR's key")
	}
	if len(ic.ChainPEM) == 0 {
		t.Error("no chain")
	}
	if st := linkState(func() error { _, err := e.ks.Open(ctx, tok3); return err }()); st != ordering.LinkSpent {
		t.Errorf("after issuance: %s, want spent", st)
	}
	if _, err := e.ks.Exchange(ctx, tok3, rsaCSR(t)); linkState(err) != ordering.LinkSpent {
		t.Errorf("second exchange: %v, want spent", err)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ?`, r.ID); n != 1 {
		t.Errorf("%d certificates, want 1", n)
	}
	l, _ := e.db.LatestKeyGenLink(ctx, nil, r.ID)
	if l.CertificateID != ic.CertificateID || l.SpentAt.IsZero() {
		t.Errorf("link record: %+v", l)
	}
}

func TestKeyGenLinkEmailInTheOrdersLanguage(t *testing.T) {
	e := newKGEnv(t)
	ctx := context.Background()
	if _, err := e.db.Exec(`UPDATE users SET lang = 'nl' WHERE id = ?`, e.user.ID); err != nil {
		t.Fatal(err)
	}
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientAwaitingKeyGen, "Jan@Example.com")
	e.send(o, o.Recipients[0])
	m, err := e.db.LatestOutboxTo(ctx, "Jan@Example.com", ordering.KindKeyGenLink)
	if err != nil {
		t.Fatal(err)
	}
	if m.To != "Jan@Example.com" || !strings.Contains(m.Subject, "Maak uw certificaat") || m.Lang != "nl" {
		t.Errorf("email: to %q subject %q lang %q", m.To, m.Subject, m.Lang)
	}
	if !strings.Contains(m.Text, "2026-12-25") { // 30 days after 2026-11-25
		t.Errorf("the email does not say until when the link works:\n%s", m.Text)
	}
}

// The exchange takes only what KeyGen makes: an RSA-2048 CSR. Refusals
// change nothing: the link stays usable.
func TestKeyGenExchangeRefusals(t *testing.T) {
	e := newKGEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientAwaitingKeyGen, "kg@example.com")
	tok := e.send(o, o.Recipients[0])

	k3072, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: func() []byte {
		b, _ := x509.MarshalPKCS8PrivateKey(rsa2048OrNew(t))
		return b
	}()}))
	cases := []struct {
		name, csr, key string
	}{
		{"RSA-3072", csrOf(t, k3072), "keygen.csr_not_rsa2048"},
		{"ECDSA P-256", newCSR(t), "keygen.csr_not_rsa2048"},
		{"private key", privPEM, "csr.private_key"},
		{"CSR and private key", rsaCSR(t) + privPEM, "csr.private_key"},
		{"empty", "", "csr.empty"},
		{"garbage", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "csr.parse"},
	}
	for _, c := range cases {
		_, err := e.ks.Exchange(ctx, tok, c.csr)
		var pe *portal.Error
		if !errors.As(err, &pe) || pe.Code != portal.EInvalid || pe.Key != c.key {
			t.Errorf("%s: %v, want invalid %s", c.name, err, c.key)
		}
	}
	if _, err := e.ks.Open(ctx, tok); err != nil {
		t.Errorf("after refusals the link is %v", err)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates`); n != 0 {
		t.Errorf("%d certificate rows after refusals", n)
	}
	if _, err := e.ks.Exchange(ctx, "nope", rsaCSR(t)); linkState(err) != ordering.LinkUnknown || portal.ErrorCode(err) != portal.ENotFound {
		t.Errorf("unknown token: %v", err)
	}
}

func rsa2048OrNew(t testing.TB) *rsa.PrivateKey {
	rsaCSR(t)
	return rsa2048
}

// The requestor's new link after a certificate was issued through the old
// one: that certificate is revoked as superseded, the recipient awaits key
// generation again, the old link stays spent, the new one works and issues
// again without a second charge.
func TestKeyGenResendRevokesUnusedCertificate(t *testing.T) {
	e := newKGEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientAwaitingKeyGen, "kg@example.com")
	r := o.Recipients[0]
	tok := e.send(o, r)
	ic, err := e.ks.Exchange(ctx, tok, rsaCSR(t))
	if err != nil {
		t.Fatal(err)
	}

	// another account cannot
	other, _ := e.db.CreateAccount(ctx, "Other")
	if err := e.ks.Resend(ctx, other.ID, o.ID, r.ID, "x@other.test"); portal.ErrorCode(err) != portal.ENotFound {
		t.Errorf("other account: %v", err)
	}
	if err := e.ks.Resend(ctx, e.acct, o.ID, r.ID, e.user.Email); err != nil {
		t.Fatal(err)
	}
	var st string
	var reason int
	if err := e.db.QueryRow(`SELECT status, revocation_reason FROM certificates WHERE id = ?`, ic.CertificateID).Scan(&st, &reason); err != nil || st != "revoked" || reason != 4 {
		t.Errorf("old certificate: %s reason %d (%v), want revoked superseded", st, reason, err)
	}
	if got := e.recipient(r.ID); got.Status != portal.RecipientAwaitingKeyGen {
		t.Errorf("recipient %s", got.Status)
	}
	if linkState(func() error { _, err := e.ks.Open(ctx, tok); return err }()) != ordering.LinkSpent {
		t.Error("the old link is usable again")
	}
	m, _ := e.db.LatestOutboxTo(ctx, r.Email, ordering.KindKeyGenLink)
	tok2 := tokenRE.FindStringSubmatch(m.Text)[1]
	if tok2 == tok {
		t.Fatal("same token")
	}
	l, _ := e.db.LatestKeyGenLink(ctx, nil, r.ID)
	if l.SentBy != e.user.Email {
		t.Errorf("sent by %q", l.SentBy)
	}
	ic2, err := e.ks.Exchange(ctx, tok2, rsaCSR(t))
	if err != nil {
		t.Fatal(err)
	}
	if ic2.Serial == ic.Serial {
		t.Error("same certificate")
	}
	if n, sum := e.bill.total(); n != 1 || sum != 1000 {
		t.Errorf("settled %d times, %d cents: the re-issue must not be charged", n, sum)
	}

	// A recipient whose certificate came from an uploaded CSR has no KeyGen link to replace.
	o2 := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady, "csr@example.com")
	if _, err := e.p.Issue(ctx, o2.Recipients[0].ID); err != nil {
		t.Fatal(err)
	}
	var pe *portal.Error
	if err := e.ks.Resend(ctx, e.acct, o2.ID, o2.Recipients[0].ID, e.user.Email); !errors.As(err, &pe) || pe.Key != "keygen.resend.not_keygen" {
		t.Errorf("uploaded-CSR certificate: %v", err)
	}
	// Awaiting a validation: nothing to send yet.
	o3 := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientAwaitingMailbox, "wait@example.com")
	if err := e.ks.Resend(ctx, e.acct, o3.ID, o3.Recipients[0].ID, e.user.Email); !errors.As(err, &pe) || pe.Key != "keygen.resend.not_waiting" {
		t.Errorf("awaiting mailbox: %v", err)
	}
}

// A cancelled order closes its links.
func TestKeyGenLinkClosedWhenOrderCancelled(t *testing.T) {
	e := newKGEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientAwaitingKeyGen, "kg@example.com")
	tok := e.send(o, o.Recipients[0])
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.CancelOrder(ctx, tx, e.acct, o.ID) }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ks.Exchange(ctx, tok, rsaCSR(t)); linkState(err) != ordering.LinkClosed {
		t.Errorf("cancelled order: %v", err)
	}
}

type failingCAA struct{ err error }

func (f failingCAA) CheckCAAIssueMail(context.Context, string) (bool, string, error) {
	return false, "", f.err
}

// A KeyGen exchange whose issuance does not complete takes its CSR back:
// the key lives only in the page, which drops it, so a later issuance of
// that CSR would make (and charge) a certificate nobody can use.
//   - Deferred (the CAA look-up failed): the recipient awaits key
//     generation again and the same link works; a retry issues.
//   - Held (the payment was refused): held for CA staff without a CSR;
//     releasing it sends the recipient back to key generation with a new
//     link (the old one dead), which then issues.
func TestKeyGenExchangeNotCompletedWithdrawsTheCSR(t *testing.T) {
	e := newKGEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientAwaitingKeyGen, "kg@example.com")
	r := o.Recipients[0]
	tok := e.send(o, r)

	e.p.CAA = failingCAA{errors.New("SERVFAIL")}
	var pe *portal.Error
	if _, err := e.ks.Exchange(ctx, tok, rsaCSR(t)); !errors.As(err, &pe) || pe.Key != "keygen.deferred" || pe.Code != portal.EConflict {
		t.Fatalf("deferred: %v", err)
	}
	if got := e.recipient(r.ID); got.Status != portal.RecipientAwaitingKeyGen || got.CSR != "" {
		t.Fatalf("after a deferred exchange: %s, CSR %d bytes", got.Status, len(got.CSR))
	}
	if _, err := e.ks.Open(ctx, tok); err != nil {
		t.Fatalf("the same link after a deferral: %v", err)
	}
	// What the scheduler would do: nothing is ready.
	if n := e.p.IssueRecipients(ctx, []int64{r.ID}); n != 0 {
		t.Fatalf("the scheduler issued %d certificates for a dropped key", n)
	}

	e.p.CAA = nil
	e.bill.err = portal.Errorf(portal.EConflict, "payment refused")
	if _, err := e.ks.Exchange(ctx, tok, rsaCSR(t)); !errors.As(err, &pe) || pe.Key != "keygen.held" {
		t.Fatalf("held: %v", err)
	}
	if got := e.recipient(r.ID); got.Status != portal.RecipientHeld || got.CSR != "" {
		t.Fatalf("after a held exchange: %s, CSR %d bytes", got.Status, len(got.CSR))
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ? AND status = 'issued'`, r.ID); n != 0 {
		t.Fatalf("%d issued certificates", n)
	}

	// CA staff release it: back to key generation, a new link.
	e.bill.err = nil
	st, err := e.db.ReleaseHeld(ctx, r.ID)
	if err != nil || st != portal.RecipientAwaitingKeyGen {
		t.Fatalf("release: %q %v", st, err)
	}
	if sent, err := e.ks.SendLinkTo(ctx, r.ID); err != nil || !sent {
		t.Fatalf("new link: %v %v", sent, err)
	}
	m, _ := e.db.LatestOutboxTo(ctx, r.Email, ordering.KindKeyGenLink)
	tok2 := tokenRE.FindStringSubmatch(m.Text)[1]
	if tok2 == tok || linkState(func() error { _, err := e.ks.Open(ctx, tok); return err }()) == ordering.LinkUsable {
		t.Fatal("the old link still works after the new one was sent")
	}
	if _, err := e.ks.Exchange(ctx, tok2, rsaCSR(t)); err != nil {
		t.Fatalf("exchange through the new link: %v", err)
	}
	if got := e.recipient(r.ID); got.Status != portal.RecipientIssued {
		t.Fatalf("after the new link: %s", got.Status)
	}
	// An ordinary hold (a CSR sent with the order) is released to ready.
	o2 := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady, "csr@example.com")
	if _, err := e.db.ExecContext(ctx, `UPDATE recipients SET status = 'held' WHERE id = ?`, o2.Recipients[0].ID); err != nil {
		t.Fatal(err)
	}
	if st, err := e.db.ReleaseHeld(ctx, o2.Recipients[0].ID); err != nil || st != portal.RecipientReady {
		t.Fatalf("release of a held order CSR: %q %v", st, err)
	}
	if sent, err := e.ks.SendLinkTo(ctx, o2.Recipients[0].ID); err != nil || sent {
		t.Fatalf("a link for a ready recipient: %v %v", sent, err)
	}
}
