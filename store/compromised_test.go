package store

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"math/big"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"certdesk/internal/portal"
)

// compromiseEnv is a store with two accounts, for certificates of chosen
// keys.
type compromiseEnv struct {
	t      *testing.T
	db     *DB
	path   string
	clock  *portal.FixedClock
	users  []portal.User // one per account
	issuer *ecdsa.PrivateKey
	serial int
}

func newCompromiseEnv(t *testing.T) *compromiseEnv {
	t.Helper()
	ctx := context.Background()
	e := &compromiseEnv{t: t, path: filepath.Join(t.TempDir(), "k.db"),
		clock: portal.NewFixedClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))}
	e.open()
	for i, name := range []string{"A", "B"} {
		a, err := e.db.CreateAccount(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		u, err := e.db.CreateUser(ctx, portal.User{AccountID: a.ID, Email: "u" + strconv.Itoa(i) + "@example.com", Name: "U",
			Role: portal.RoleUser, PasswordHash: "x"})
		if err != nil {
			t.Fatal(err)
		}
		e.users = append(e.users, u)
	}
	e.issuer = newKey(t)
	return e
}

func (e *compromiseEnv) open() {
	e.t.Helper()
	db, err := Open(context.Background(), e.path, e.clock)
	if err != nil {
		e.t.Fatal(err)
	}
	e.db = db
	e.t.Cleanup(func() { db.Close() })
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func spkiHash(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return sum[:]
}

// issue stores an issued certificate for pub, valid from nb to na, for a
// new one-recipient order of the account of user u.
func (e *compromiseEnv) issue(u portal.User, pub crypto.PublicKey, nb, na time.Time) portal.Certificate {
	e.t.Helper()
	c, err := e.issueErr(u, pub, nb, na)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *compromiseEnv) revoke(accountID, id int64, reason int, at time.Time, by string) error {
	ctx := context.Background()
	return e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.RevokeCertificate(ctx, tx, accountID, id, reason, at, by) })
}

func (e *compromiseEnv) state(id int64) (status string, reason int, at time.Time, by string) {
	e.t.Helper()
	var rat sql.NullString
	if err := e.db.QueryRow(`SELECT status, COALESCE(revocation_reason, 0), revoked_at, revoked_by FROM certificates WHERE id = ?`, id).
		Scan(&status, &reason, &rat, &by); err != nil {
		e.t.Fatal(err)
	}
	return status, reason, parseNullTime(rat), by
}

func (e *compromiseEnv) compromised(pub crypto.PublicKey) bool {
	e.t.Helper()
	bad, err := e.db.KeyCompromised(context.Background(), spkiHash(e.t, pub))
	if err != nil {
		e.t.Fatal(err)
	}
	return bad
}

// SBR 4.9.1.1 (3): revoking one certificate for keyCompromise revokes
// every live certificate of that key in the account (not another
// account's: a CSR is not secret, anyone could report another
// subscriber's key; that needs proof of possession), records
// the key, and a new certificate of it is not stored; certificates of
// other keys, expired ones and those revoked before keep what they had.
func TestKeyCompromiseRevokesEveryLiveCertificateOfTheKey(t *testing.T) {
	e := newCompromiseEnv(t)
	ctx := context.Background()
	now := e.clock.Now()
	k, other := newKey(t), newKey(t)
	year := now.AddDate(1, 0, 0)
	reported := e.issue(e.users[0], &k.PublicKey, now, year)
	sibling := e.issue(e.users[0], &k.PublicKey, now, year)   // a plan's next period, same key
	otherAcct := e.issue(e.users[1], &k.PublicKey, now, year) // same key in another account
	expired := e.issue(e.users[0], &k.PublicKey, now.AddDate(-2, 0, 0), now.Add(-time.Hour))
	superseded := e.issue(e.users[0], &k.PublicKey, now, year)
	otherKey := e.issue(e.users[0], &other.PublicKey, now, year)
	if err := e.revoke(0, superseded.ID, 4, now, "system"); err != nil {
		t.Fatal(err)
	}
	if e.compromised(&k.PublicKey) {
		t.Fatal("a key is compromised before any keyCompromise revocation")
	}

	at := now.Add(time.Hour)
	if err := e.revoke(e.users[0].AccountID, reported.ID, 1, at, "u0@example.com"); err != nil {
		t.Fatal(err)
	}
	if st, reason, rat, _ := e.state(reported.ID); st != "revoked" || reason != 1 || !rat.Equal(at) {
		t.Errorf("reported certificate: %s reason %d at %v", st, reason, rat)
	}
	if st, _, _, _ := e.state(otherAcct.ID); st != "issued" {
		t.Errorf("another account's certificate of the key: %s; a subscriber's report must not revoke it", st)
	}
	for name, c := range map[string]portal.Certificate{"same account": sibling} {
		st, reason, rat, by := e.state(c.ID)
		if st != "revoked" || reason != 1 || !rat.Equal(at) {
			t.Errorf("%s, same key: %s reason %d at %v; want revoked keyCompromise at %v", name, st, reason, rat, at)
		}
		if !strings.Contains(by, reported.Serial) || strings.Contains(by, "u0@example.com") {
			t.Errorf("%s: revoked_by %q (should name the reported serial, not the other account's user)", name, by)
		}
	}
	if st, _, _, _ := e.state(expired.ID); st != "issued" {
		t.Errorf("expired certificate of the key: %s; only live ones are revoked", st)
	}
	if st, reason, rat, _ := e.state(superseded.ID); st != "revoked" || reason != 4 || !rat.Equal(now) {
		t.Errorf("certificate revoked before: %s reason %d at %v; want unchanged", st, reason, rat)
	}
	if st, _, _, _ := e.state(otherKey.ID); st != "issued" {
		t.Errorf("certificate of another key: %s", st)
	}
	if !e.compromised(&k.PublicKey) || e.compromised(&other.PublicKey) {
		t.Errorf("compromised: key %v, other key %v; want true, false", e.compromised(&k.PublicKey), e.compromised(&other.PublicKey))
	}
	var certID int64
	if err := e.db.QueryRow(`SELECT certificate_id FROM compromised_keys WHERE spki_sha256 = ?`, hex.EncodeToString(spkiHash(t, &k.PublicKey))).Scan(&certID); err != nil || certID != reported.ID {
		t.Errorf("recorded with certificate %d (%v), want %d", certID, err, reported.ID)
	}
	// The CRL lists all of them.
	rev, _ := e.db.RevokedCertificates(ctx, nil, "ISS")
	onCRL := map[string]int{}
	for _, c := range rev {
		onCRL[c.Serial] = c.RevocationReason
	}
	for _, c := range []portal.Certificate{reported, sibling} {
		if onCRL[c.Serial] != 1 {
			t.Errorf("CRL entries %v lack %s as keyCompromise", onCRL, c.Serial)
		}
	}

	// A certificate of the key signed meanwhile is not stored (SBR 6.1.1.3 (4)).
	c, err := e.issueErr(e.users[1], &k.PublicKey, now, year)
	if err != ErrKeyCompromised {
		t.Errorf("CompleteIssuance for a compromised key: %v, want ErrKeyCompromised", err)
	}
	if st, _, _, _ := e.state(c.ID); st != "issuing" {
		t.Errorf("refused row: %s, want still issuing (the pipeline revokes it)", st)
	}
	if r, _ := e.db.Recipient(ctx, nil, c.RecipientID); r.Status != portal.RecipientReady {
		t.Errorf("recipient of the refused certificate: %s", r.Status)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE status = 'issued' AND spki_sha256 = ? AND not_after > ? AND account_id = ?`,
		hex.EncodeToString(spkiHash(t, &k.PublicKey)), fmtTime(at), e.users[0].AccountID); n != 0 {
		t.Errorf("%d live certificates of the compromised key", n)
	}
	// Another key is still issued.
	e.issue(e.users[1], &other.PublicKey, now, year)
}

// Any reason other than keyCompromise records nothing and revokes only
// the certificate.
func TestOtherReasonsRevokeOnlyTheCertificate(t *testing.T) {
	for _, reason := range []int{0, 3, 4, 5, 9} {
		t.Run(strconv.Itoa(reason), func(t *testing.T) {
			e := newCompromiseEnv(t)
			now := e.clock.Now()
			k := newKey(t)
			a := e.issue(e.users[0], &k.PublicKey, now, now.AddDate(1, 0, 0))
			b := e.issue(e.users[0], &k.PublicKey, now, now.AddDate(1, 0, 0))
			if err := e.revoke(e.users[0].AccountID, a.ID, reason, now, "u0@example.com"); err != nil {
				t.Fatal(err)
			}
			if st, _, _, _ := e.state(a.ID); st != "revoked" {
				t.Errorf("revoked certificate: %s", st)
			}
			if st, _, _, _ := e.state(b.ID); st != "issued" {
				t.Errorf("the other certificate of the key: %s, want issued", st)
			}
			if e.compromised(&k.PublicKey) {
				t.Error("the key is recorded as compromised")
			}
			e.issue(e.users[1], &k.PublicKey, now, now.AddDate(1, 0, 0))
		})
	}
}

// Rows stored before migration 0050 have no spki_sha256: Open fills them
// from the DER (in batches), leaves rows without a certificate alone, and
// records the key of a certificate revoked for keyCompromise before 0050,
// revoking the certificates of that key issued since.
func TestBackfillFillsOldRowsAndRecordsOldKeyCompromises(t *testing.T) {
	e := newCompromiseEnv(t)
	ctx := context.Background()
	now := e.clock.Now()
	year := now.AddDate(1, 0, 0)
	k, other := newKey(t), newKey(t)
	var old []portal.Certificate
	for range 5 {
		old = append(old, e.issue(e.users[0], &other.PublicKey, now, year))
	}
	reported := e.issue(e.users[0], &k.PublicKey, now, year)
	since := e.issue(e.users[0], &k.PublicKey, now, year)
	garbage := e.issue(e.users[0], &other.PublicKey, now, year)
	intent := portal.Certificate{AccountID: e.users[0].AccountID, OrderID: reported.OrderID, RecipientID: reported.RecipientID, PlanPeriod: 2,
		Serial: "INTENT"}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.BeginIssuance(ctx, tx, &intent, "ISS") }); err != nil {
		t.Fatal(err)
	}
	// Make it look like a database of before 0050: the key compromise was
	// revoked without recording the key, no row has a hash.
	revokedAt := now.Add(-time.Hour)
	for _, q := range []string{
		`UPDATE certificates SET spki_sha256 = NULL`,
		`UPDATE certificates SET status = 'revoked', revocation_reason = 1, revoked_at = '` + fmtTime(revokedAt) + `', revoked_by = 'u0@example.com' WHERE id = ` + strconv.FormatInt(reported.ID, 10),
		`UPDATE certificates SET der = x'0102' WHERE id = ` + strconv.FormatInt(garbage.ID, 10),
		`DELETE FROM compromised_keys`,
	} {
		if _, err := e.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	defer func(n int) { backfillBatch = n }(backfillBatch)
	backfillBatch = 2
	e.clock.Advance(time.Minute)
	e.open()

	rows, err := e.db.Query(`SELECT id, der, spki_sha256 FROM certificates`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var id int64
		var der []byte
		var h sql.NullString
		if err := rows.Scan(&id, &der, &h); err != nil {
			t.Fatal(err)
		}
		seen++
		switch id {
		case intent.ID:
			if h.Valid {
				t.Errorf("intent row without DER got %q", h.String)
			}
		case garbage.ID:
			if !h.Valid || h.String != "" {
				t.Errorf("row with an unreadable DER: %v, want ''", h)
			}
		default:
			leaf, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
			if h.String != hex.EncodeToString(sum[:]) {
				t.Errorf("certificate %d: spki_sha256 %v, want the SHA-256 of its subjectPublicKeyInfo", id, h)
			}
		}
	}
	if seen != len(old)+4 {
		t.Errorf("%d rows", seen)
	}
	if !e.compromised(&k.PublicKey) || e.compromised(&other.PublicKey) {
		t.Errorf("after the backfill: key compromised %v, other %v; want true, false", e.compromised(&k.PublicKey), e.compromised(&other.PublicKey))
	}
	if st, reason, at, _ := e.state(since.ID); st != "revoked" || reason != 1 || !at.Equal(e.clock.Now()) {
		t.Errorf("certificate of the key issued after it was reported: %s reason %d at %v; want revoked keyCompromise now", st, reason, at)
	}
	if st, _, at, _ := e.state(reported.ID); st != "revoked" || !at.Equal(revokedAt) {
		t.Errorf("the reported certificate changed: %s %v", st, at)
	}
	for _, c := range old {
		if st, _, _, _ := e.state(c.ID); st != "issued" {
			t.Errorf("certificate of another key: %s", st)
		}
	}
	// Nothing is left to do: opening again changes nothing.
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE spki_sha256 IS NULL AND der IS NOT NULL`); n != 0 {
		t.Errorf("%d rows left without a hash", n)
	}
}

func (e *compromiseEnv) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(q, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// issueErr is issue returning CompleteIssuance's error (its row stays
// 'issuing' then).
func (e *compromiseEnv) issueErr(u portal.User, pub crypto.PublicKey, nb, na time.Time) (portal.Certificate, error) {
	e.t.Helper()
	ctx := context.Background()
	e.serial++
	serial := "C" + strconv.Itoa(e.serial)
	email := strings.ToLower(serial) + "@example.com"
	now := e.clock.Now()
	o := portal.Order{AccountID: u.AccountID, UserID: u.ID, Product: portal.ProductIndividual, SignatureHash: portal.SHA256,
		PeriodStart: now, PeriodEnd: now.AddDate(1, 0, 0), PaymentMethod: portal.PayContract, AmountCents: 100,
		AgreementVersion: "t", AgreedAt: now, Recipients: []portal.Recipient{{Email: email, CommonName: email, Status: portal.RecipientReady, CSR: "x"}}}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.InsertOrder(ctx, tx, &o, "") }); err != nil {
		e.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(e.serial)), Subject: pkix.Name{CommonName: email},
		NotBefore: nb, NotAfter: na, EmailAddresses: []string{email}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, e.issuer)
	if err != nil {
		e.t.Fatal(err)
	}
	c := portal.Certificate{AccountID: u.AccountID, OrderID: o.ID, RecipientID: o.Recipients[0].ID, PlanPeriod: 1, Serial: serial,
		Emails: []string{email}}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.BeginIssuance(ctx, tx, &c, "ISS") }); err != nil {
		e.t.Fatal(err)
	}
	c.DER, c.Subject, c.NotBefore, c.NotAfter, c.FingerprintSHA = der, "CN="+email, nb, na, "f"
	err = e.db.Tx(ctx, func(tx *sql.Tx) error { return e.db.CompleteIssuance(ctx, tx, c, 0) })
	return c, err
}
