package store

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"certdesk/internal/portal"
)

// issueFor stores an issued certificate for the order's first recipient
// in its current plan period, valid from now to notAfter.
func issueFor(t *testing.T, db *DB, o portal.Order, serial string, notAfter time.Time) portal.Certificate {
	t.Helper()
	ctx := context.Background()
	r, _ := db.Recipient(ctx, nil, o.Recipients[0].ID)
	c, err := begin(t, db, o, serial, r.PlanPeriod)
	if err != nil {
		t.Fatal(err)
	}
	c.DER, c.Subject, c.NotBefore, c.NotAfter, c.FingerprintSHA = []byte{1}, "CN=r", db.now(), notAfter, "ab"
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.CompleteIssuance(ctx, tx, c, 0) }); err != nil {
		t.Fatal(err)
	}
	if err := db.CompleteOrderIfDone(ctx, nil, o.ID); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPlansDueAndStartPlanPeriodOnce(t *testing.T) {
	db, clock, o := certTestDB(t)
	ctx := context.Background()
	now := clock.Now()
	end := now.Add(1095 * 24 * time.Hour)
	if _, err := db.Exec(`UPDATE orders SET period_end = ? WHERE id = ?`, fmtTime(end), o.ID); err != nil {
		t.Fatal(err)
	}
	na := now.Add(portal.MaxCertValidity)
	c := issueFor(t, db, o, "P1", na)

	due, err := db.PlansDue(ctx, now, na.Add(-time.Second))
	if err != nil || len(due) != 0 {
		t.Fatalf("due before the window: %v %v", due, err)
	}
	due, err = db.PlansDue(ctx, now, na)
	if err != nil || len(due) != 1 {
		t.Fatalf("due: %v %v", due, err)
	}
	d := due[0]
	if d.RecipientID != o.Recipients[0].ID || d.PlanPeriod != 1 || !d.CertNotAfter.Equal(na) || !d.PeriodEnd.Equal(end) || d.KeyGen {
		t.Fatalf("due row: %+v", d)
	}
	start := func() bool {
		var ok bool
		err := db.Tx(ctx, func(tx *sql.Tx) (err error) {
			ok, err = db.StartPlanPeriod(ctx, tx, d.RecipientID, 1, true)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !start() {
		t.Fatal("period 2 not started")
	}
	if start() {
		t.Fatal("period 2 started twice")
	}
	r, _ := db.Recipient(ctx, nil, d.RecipientID)
	if r.PlanPeriod != 2 || r.CSR != "x" || r.CertificateID != c.ID {
		t.Errorf("recipient after the start: %+v", r)
	}
	got, _ := db.Order(ctx, nil, o.AccountID, o.ID)
	if got.Status != portal.OrderPending {
		t.Errorf("order %s, want pending", got.Status)
	}
	if due, _ := db.PlansDue(ctx, now, na); len(due) != 0 {
		t.Errorf("still due after the start: %+v", due)
	}
	// Period 2 ends with the order: never due.
	if err := db.SetRecipientStatus(ctx, nil, d.RecipientID, portal.RecipientReady, ""); err != nil {
		t.Fatal(err)
	}
	issueFor(t, db, o, "P2", end)
	if due, _ := db.PlansDue(ctx, now, end); len(due) != 0 {
		t.Errorf("the last period is due: %+v", due)
	}
}

func TestAutoRenewDueLinkOnceAndRefusals(t *testing.T) {
	db, clock, o := certTestDB(t)
	ctx := context.Background()
	now := clock.Now()
	end := o.PeriodEnd
	month := 30 * 24 * time.Hour
	dueNow := func() int {
		t.Helper()
		list, err := db.AutoRenewDue(ctx, clock.Now().Add(-month), clock.Now().Add(month), clock.Now().Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	clock.Set(end.Add(-month))
	if dueNow() != 0 {
		t.Fatal("an order without auto-renew is due")
	}
	if _, err := db.Exec(`UPDATE orders SET auto_renew = 1 WHERE id = ?`, o.ID); err != nil {
		t.Fatal(err)
	}
	if dueNow() != 0 {
		t.Fatal("an order without an issued certificate is due")
	}
	clock.Set(now)
	issueFor(t, db, o, "R1", end)
	clock.Set(end.Add(-month - time.Second))
	if dueNow() != 0 {
		t.Fatal("due 30 days and a second before the end")
	}
	clock.Set(end.Add(-month))
	if dueNow() != 1 {
		t.Fatal("not due 30 days before the end")
	}

	refuse := func() int {
		var n int
		err := db.Tx(ctx, func(tx *sql.Tx) (err error) {
			n, err = db.RenewalRefused(ctx, tx, o.ID, "declined", clock.Now(), clock.Now().Add(-24*time.Hour))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := refuse(); n != 1 {
		t.Fatalf("first refusal recorded as %d", n)
	}
	if n := refuse(); n != 0 {
		t.Fatalf("a second refusal the same day recorded as %d", n)
	}
	if dueNow() != 0 {
		t.Fatal("due again the same day after a refusal")
	}
	clock.Advance(24 * time.Hour)
	if dueNow() != 1 {
		t.Fatal("not due a day after a refusal")
	}
	if n := refuse(); n != 2 {
		t.Fatalf("second day's refusal recorded as %d", n)
	}

	// A renewal order, linked once.
	ro := portal.Order{AccountID: o.AccountID, UserID: o.UserID, Product: o.Product, SignatureHash: portal.SHA256,
		PeriodStart: clock.Now(), PeriodEnd: clock.Now().AddDate(1, 0, 0), PaymentMethod: portal.PayContract,
		AgreementVersion: "new", AgreedAt: clock.Now(), AutoRenew: true}
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.InsertOrder(ctx, tx, &ro, "renew-key") }); err != nil {
		t.Fatal(err)
	}
	if id, err := db.OrderIDByIdempotencyKey(ctx, nil, o.AccountID, "renew-key"); err != nil || id != ro.ID {
		t.Fatalf("by key: %d %v", id, err)
	}
	if id, err := db.OrderIDByIdempotencyKey(ctx, nil, o.AccountID+1, "renew-key"); err != nil || id != 0 {
		t.Fatalf("another account's key found: %d %v", id, err)
	}
	link := func() bool {
		var ok bool
		err := db.Tx(ctx, func(tx *sql.Tx) (err error) {
			ok, err = db.LinkRenewal(ctx, tx, o.ID, ro.ID, o.AgreementVersion, o.AgreedAt)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !link() || link() {
		t.Fatal("LinkRenewal must succeed exactly once")
	}
	got, _ := db.Order(ctx, nil, o.AccountID, ro.ID)
	if got.RenewedFrom != o.ID || got.AgreementVersion != "t" || !got.AgreedAt.Equal(o.AgreedAt) {
		t.Errorf("renewal order: from %d, agreement %q at %v", got.RenewedFrom, got.AgreementVersion, got.AgreedAt)
	}
	st, err := db.RenewalStateOf(ctx, o.AccountID, o.ID)
	if err != nil || st.RenewalOrderID != ro.ID || st.Failure != "" || st.Failures != 2 {
		t.Errorf("state %+v %v", st, err)
	}
	clock.Advance(48 * time.Hour)
	if dueNow() != 0 {
		t.Error("a renewed order is due again")
	}
	if n := refuse(); n != 0 {
		t.Error("a refusal recorded on a renewed order")
	}
}
