package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"certdesk/internal/portal"
)

func certTestDB(t *testing.T) (*DB, *portal.FixedClock, portal.Order) {
	t.Helper()
	ctx := context.Background()
	clock := portal.NewFixedClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	db, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, _ := db.CreateAccount(ctx, "A")
	u, _ := db.CreateUser(ctx, portal.User{AccountID: a.ID, Email: "u@example.com", Name: "U", Role: portal.RoleUser, PasswordHash: "x"})
	now := clock.Now()
	o := portal.Order{AccountID: a.ID, UserID: u.ID, Product: portal.ProductIndividual, SignatureHash: portal.SHA256,
		PeriodStart: now, PeriodEnd: now.AddDate(1, 0, 0), PaymentMethod: portal.PayContract, AmountCents: 100,
		AgreementVersion: "t", AgreedAt: now, Recipients: []portal.Recipient{{Email: "r@example.com", CommonName: "r@example.com", Status: portal.RecipientReady, CSR: "x"}}}
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.InsertOrder(ctx, tx, &o, "") }); err != nil {
		t.Fatal(err)
	}
	return db, clock, o
}

func begin(t *testing.T, db *DB, o portal.Order, serial string, period int) (portal.Certificate, error) {
	t.Helper()
	c := portal.Certificate{AccountID: o.AccountID, OrderID: o.ID, RecipientID: o.Recipients[0].ID, PlanPeriod: period, Serial: serial,
		Emails: []string{"r@example.com"}}
	err := db.Tx(context.Background(), func(tx *sql.Tx) error { return db.BeginIssuance(context.Background(), tx, &c, "ISS") })
	return c, err
}

func TestOneLiveCertificatePerRecipientAndPeriod(t *testing.T) {
	db, clock, o := certTestDB(t)
	ctx := context.Background()
	c1, err := begin(t, db, o, "A1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := begin(t, db, o, "A2", 1); err != ErrIssuanceInProgress {
		t.Fatalf("second intent in the same period: %v", err)
	}
	if _, err := begin(t, db, o, "A1", 2); err == nil || err == ErrIssuanceInProgress {
		t.Fatalf("a reused serial must be a plain error, got %v", err)
	}
	// A failed row (nothing signed) makes room; it is never on the CRL.
	if err := db.FailIssuance(ctx, nil, c1.ID, []string{"e_x"}, "lint"); err != nil {
		t.Fatal(err)
	}
	c2, err := begin(t, db, o, "A3", 1)
	if err != nil {
		t.Fatalf("after a failure: %v", err)
	}
	c2.DER, c2.Subject, c2.NotBefore, c2.NotAfter, c2.FingerprintSHA = []byte{1, 2, 3}, "CN=r", clock.Now(), clock.Now().AddDate(1, 0, 0), "ab"
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.CompleteIssuance(ctx, tx, c2, 100) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.CompleteIssuance(ctx, tx, c2, 100) }); err == nil {
		t.Error("completing twice")
	}
	r, _ := db.Recipient(ctx, nil, o.Recipients[0].ID)
	if r.Status != portal.RecipientIssued || r.CertificateID != c2.ID {
		t.Errorf("recipient %+v", r)
	}
	if n, _ := db.SettledForRecipient(ctx, nil, r.ID); n != 100 {
		t.Errorf("settled %d", n)
	}
	list, total, err := db.ListCertificates(ctx, o.AccountID, 10, 0)
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != c2.ID {
		t.Errorf("list: %d %v", total, err)
	}
	if revoked, _ := db.RevokedCertificates(ctx, nil, "ISS"); len(revoked) != 0 {
		t.Errorf("revoked list %v", revoked)
	}

	// Revocation: scoped by account, once.
	at := clock.Now().Add(time.Hour)
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.RevokeCertificate(ctx, tx, o.AccountID+1, c2.ID, 1, at, "x") }); portal.ErrorCode(err) != portal.ENotFound {
		t.Errorf("another account: %v", err)
	}
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		return db.RevokeCertificate(ctx, tx, o.AccountID, c2.ID, 1, at, "u@example.com")
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.RevokeCertificate(ctx, tx, o.AccountID, c2.ID, 1, at, "x") }); portal.ErrorCode(err) != portal.EConflict {
		t.Errorf("second revocation: %v", err)
	}
	got, err := db.CertificateBySerial(ctx, "ISS", "A3")
	if err != nil || got.Status != "revoked" || got.RevocationReason != 1 || !got.RevokedAt.Equal(at) {
		t.Errorf("by serial: %+v %v", got, err)
	}
	if _, err := db.CertificateBySerial(ctx, "OTHER", "A3"); portal.ErrorCode(err) != portal.ENotFound {
		t.Errorf("another issuer's serial: %v", err)
	}
	if last, _ := db.LastRevokedAt(ctx, "ISS"); !last.Equal(at) {
		t.Errorf("last revoked %v", last)
	}
}

func TestInterruptedIssuanceIsRevokedAndHidden(t *testing.T) {
	db, clock, o := certTestDB(t)
	ctx := context.Background()
	c, err := begin(t, db, o, "B1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if stale, _ := db.StaleIssuing(ctx, clock.Now()); len(stale) != 0 {
		t.Errorf("a row of this instant is stale")
	}
	clock.Advance(2 * time.Minute)
	stale, err := db.StaleIssuing(ctx, clock.Now().Add(-time.Minute))
	if err != nil || len(stale) != 1 || stale[0].ID != c.ID {
		t.Fatalf("stale: %v %v", stale, err)
	}
	if err := db.RevokeUnstored(ctx, nil, c.ID, nil, "interrupted"); err != nil {
		t.Fatal(err)
	}
	rev, _ := db.RevokedCertificates(ctx, nil, "ISS")
	if len(rev) != 1 || rev[0].Serial != "B1" || rev[0].RevocationReason != 5 {
		t.Errorf("CRL entries: %+v", rev)
	}
	if _, total, _ := db.ListCertificates(ctx, o.AccountID, 10, 0); total != 0 {
		t.Errorf("the customer sees %d undelivered certificates", total)
	}
	if _, err := begin(t, db, o, "B2", 1); err != nil {
		t.Errorf("the revoked row blocks a new intent: %v", err)
	}
}

func TestCRLNumbersGrow(t *testing.T) {
	db, clock, _ := certTestDB(t)
	ctx := context.Background()
	for want := int64(1); want <= 3; want++ {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			n, err := db.NextCRLNumber(ctx, tx, "ISS")
			if err != nil {
				return err
			}
			if n != want {
				t.Errorf("number %d, want %d", n, want)
			}
			return db.SaveCRL(ctx, tx, "ISS", n, []byte{byte(n)}, clock.Now(), clock.Now().Add(time.Hour))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	der, n, _, _, err := db.CRL(ctx, "ISS")
	if err != nil || n != 3 || der[0] != 3 {
		t.Errorf("stored CRL %v %d %v", der, n, err)
	}
	if _, _, _, _, err := db.CRL(ctx, "NONE"); portal.ErrorCode(err) != portal.ENotFound {
		t.Errorf("missing CRL: %v", err)
	}
}

// BeginIssuances records intents for a batch in one transaction: a
// recipient that is not ready, or in another plan period, or with a live
// row, fails alone and the others are recorded.
func TestBeginIssuancesPerRecipient(t *testing.T) {
	db, _, o := certTestDB(t)
	ctx := context.Background()
	now := db.now()
	o2 := portal.Order{AccountID: o.AccountID, UserID: o.UserID, Product: portal.ProductIndividual, SignatureHash: portal.SHA256,
		PeriodStart: now, PeriodEnd: now.AddDate(1, 0, 0), PaymentMethod: portal.PayContract, AmountCents: 100, AgreementVersion: "t", AgreedAt: now,
		Recipients: []portal.Recipient{
			{Email: "s1@example.com", CommonName: "s1@example.com", Status: portal.RecipientReady, CSR: "x"},
			{Email: "s2@example.com", CommonName: "s2@example.com", Status: portal.RecipientAwaitingKeyGen},
			{Email: "s3@example.com", CommonName: "s3@example.com", Status: portal.RecipientReady, CSR: "x"},
		}}
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.InsertOrder(ctx, tx, &o2, "") }); err != nil {
		t.Fatal(err)
	}
	if _, err := begin(t, db, o, "LIVE", 1); err != nil { // o's recipient already has a live row
		t.Fatal(err)
	}
	cert := func(r portal.Recipient, serial string, period int) *portal.Certificate {
		return &portal.Certificate{AccountID: o.AccountID, OrderID: r.OrderID, RecipientID: r.ID, PlanPeriod: period, Serial: serial}
	}
	certs := []*portal.Certificate{
		cert(o2.Recipients[0], "B1", 1), // ok
		cert(o2.Recipients[1], "B2", 1), // not ready
		cert(o.Recipients[0], "B3", 1),  // live row
		cert(o2.Recipients[2], "B4", 2), // other plan period
		cert(o2.Recipients[2], "B5", 1), // ok
	}
	var errs []error
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		errs, err = db.BeginIssuances(ctx, tx, certs, "ISS")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []error{nil, ErrRecipientNotReady, ErrIssuanceInProgress, ErrRecipientNotReady, nil}
	for i := range want {
		if errs[i] != want[i] {
			t.Errorf("cert %d: %v, want %v", i, errs[i], want[i])
		}
	}
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM certificates WHERE status = 'issuing' AND serial IN ('B1','B5')`).Scan(&n)
	if n != 2 || certs[0].ID == 0 || certs[4].ID == 0 {
		t.Errorf("%d rows recorded, ids %d %d", n, certs[0].ID, certs[4].ID)
	}
	db.QueryRow(`SELECT COUNT(*) FROM certificates WHERE serial IN ('B2','B3','B4')`).Scan(&n)
	if n != 0 {
		t.Errorf("%d refused rows stored", n)
	}
}

// InSavepoint undoes only the failing part of a transaction.
func TestInSavepoint(t *testing.T) {
	db, _, o := certTestDB(t)
	ctx := context.Background()
	rid := o.Recipients[0].ID
	boom := portal.Errorf(portal.EConflict, "boom")
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		fnErr, err := db.InSavepoint(ctx, tx, func() error {
			if _, err := db.HoldRecipient(ctx, tx, rid, "undone"); err != nil {
				return err
			}
			return boom
		})
		if err != nil || fnErr != boom {
			t.Fatalf("savepoint: %v %v", fnErr, err)
		}
		fnErr, err = db.InSavepoint(ctx, tx, func() error {
			_, err := tx.ExecContext(ctx, `UPDATE orders SET amount_cents = 7 WHERE id = ?`, o.ID)
			return err
		})
		if err != nil || fnErr != nil {
			t.Fatalf("savepoint: %v %v", fnErr, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := db.Recipient(ctx, nil, rid)
	var amount int64
	db.QueryRow(`SELECT amount_cents FROM orders WHERE id = ?`, o.ID).Scan(&amount)
	if r.Status != portal.RecipientReady || amount != 7 {
		t.Errorf("recipient %s (the failed part was kept), amount %d (the good part was lost)", r.Status, amount)
	}
}
