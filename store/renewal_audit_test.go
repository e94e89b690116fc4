package store

// Audit of multi-year plans and auto-renew (issue 5, point 8): each test
// here failed before the fix it names.

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"certdesk/internal/portal"
)

// An order is due for auto-renew only when a recipient's CURRENT
// certificate is issued, and RenewalRecipients lists exactly those
// recipients: a plan whose period-2 certificate was revoked was due
// because its period-1 certificate was still 'issued'.
func TestAuditAutoRenewDueCountsCurrentCertificatesOnly(t *testing.T) {
	db, clock, o := certTestDB(t)
	ctx := context.Background()
	now := clock.Now()
	end := now.Add(1095 * 24 * time.Hour)
	month := 30 * 24 * time.Hour
	if _, err := db.Exec(`UPDATE orders SET period_end = ?, auto_renew = 1 WHERE id = ?`, fmtTime(end), o.ID); err != nil {
		t.Fatal(err)
	}
	rid := o.Recipients[0].ID
	issueFor(t, db, o, "P1", now.Add(portal.MaxCertValidity))
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := db.StartPlanPeriod(ctx, tx, rid, 1, true)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRecipientStatus(ctx, nil, rid, portal.RecipientReady, ""); err != nil {
		t.Fatal(err)
	}
	c2 := issueFor(t, db, o, "P2", end)

	due := func() int {
		t.Helper()
		list, err := db.AutoRenewDue(ctx, clock.Now().Add(-month), clock.Now().Add(month), clock.Now().Add(-24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	renewable := func() int {
		t.Helper()
		rs, err := db.RenewalRecipients(ctx, nil, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	clock.Set(end.Add(-month))
	if due() != 1 || renewable() != 1 {
		t.Fatalf("with period 2 issued: due %d, renewable %d; want 1 and 1", due(), renewable())
	}
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		return db.RevokeCertificate(ctx, tx, o.AccountID, c2.ID, 3, clock.Now(), "u@example.com")
	}); err != nil {
		t.Fatal(err)
	}
	if n := renewable(); n != 0 {
		t.Errorf("%d renewable recipients after the current certificate was revoked, want 0", n)
	}
	if n := due(); n != 0 {
		t.Errorf("due %d after the current certificate was revoked (the period-1 certificate is still 'issued'), want 0", n)
	}
}

// StartPlanPeriod does not start a period for a recipient whose current
// certificate was revoked, or whose order was cancelled, after PlansDue
// listed it.
func TestAuditStartPlanPeriodRechecksCertificateAndOrder(t *testing.T) {
	for _, what := range []string{"revoked", "cancelled"} {
		t.Run(what, func(t *testing.T) {
			db, clock, o := certTestDB(t)
			ctx := context.Background()
			now := clock.Now()
			if _, err := db.Exec(`UPDATE orders SET period_end = ? WHERE id = ?`, fmtTime(now.Add(1095*24*time.Hour)), o.ID); err != nil {
				t.Fatal(err)
			}
			c := issueFor(t, db, o, "P1", now.Add(portal.MaxCertValidity))
			due, err := db.PlansDue(ctx, now, now.Add(portal.MaxCertValidity))
			if err != nil || len(due) != 1 {
				t.Fatalf("due %v %v", due, err)
			}
			switch what {
			case "revoked":
				err = db.Tx(ctx, func(tx *sql.Tx) error {
					return db.RevokeCertificate(ctx, tx, o.AccountID, c.ID, 1, now, "u@example.com")
				})
			case "cancelled":
				_, err = db.Exec(`UPDATE orders SET status = 'cancelled' WHERE id = ?`, o.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
			var ok bool
			if err := db.Tx(ctx, func(tx *sql.Tx) (err error) {
				ok, err = db.StartPlanPeriod(ctx, tx, due[0].RecipientID, 1, true)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if r, _ := db.Recipient(ctx, nil, due[0].RecipientID); ok || r.PlanPeriod != 1 || r.Status != portal.RecipientIssued {
				t.Errorf("started: %v, recipient period %d %s", ok, r.PlanPeriod, r.Status)
			}
		})
	}
}
