package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"certdesk/internal/billing"
	"certdesk/internal/portal"
)

func openBillingDB(t *testing.T) (*DB, *portal.FixedClock) {
	t.Helper()
	clock := portal.NewFixedClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "billing.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, clock
}

// billingAccount makes an account with an admin user.
func billingAccount(t *testing.T, db *DB, name, email string) (portal.Account, portal.User) {
	t.Helper()
	ctx := context.Background()
	a, err := db.CreateAccount(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUser(ctx, portal.User{AccountID: a.ID, Email: email, Name: "Admin", Role: portal.RoleAccountAdmin, PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	return a, u
}

func billingOrder(t *testing.T, db *DB, acct, user int64) int64 {
	t.Helper()
	now := fmtTime(db.now())
	res, err := db.Exec(`INSERT INTO orders(account_id, user_id, product_id, signature_hash, period_start, period_end, payment_method,
		amount_cents, agreement_version, agreed_at, created_at) VALUES (?, ?, 'secure_email_mailbox', 'sha256', ?, ?, 'card', 100, 'v1', ?, ?)`,
		acct, user, now, now, now, now)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	return id
}

func TestBillingContractRoundTripAndReplace(t *testing.T) {
	db, _ := openBillingDB(t)
	ctx := context.Background()
	a, _ := billingAccount(t, db, "Example Corp", "admin@example.com")
	if _, err := db.BillingContract(ctx, nil, a.ID); portal.ErrorCode(err) != portal.ENotFound {
		t.Fatalf("no contract yet: %v", err)
	}
	c := billing.Contract{AccountID: a.ID, Reference: "C-2026-001", Active: true, LimitCents: 10_000_000,
		Prices: map[portal.ProductID]int64{portal.ProductBusiness: 3900, portal.ProductIndividual: 1900}}
	if err := db.SetBillingContract(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := db.BillingContract(ctx, nil, a.ID)
	if err != nil || got.Reference != c.Reference || !got.Active || got.LimitCents != c.LimitCents || len(got.Prices) != 2 ||
		got.Prices[portal.ProductBusiness] != 3900 || got.CreatedAt.IsZero() {
		t.Fatalf("contract %+v %v", got, err)
	}
	// replacing drops prices no longer listed
	c.Active, c.Prices = false, map[portal.ProductID]int64{portal.ProductOrganization: 2500}
	if err := db.SetBillingContract(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, _ = db.BillingContract(ctx, nil, a.ID)
	if got.Active || len(got.Prices) != 1 || got.Prices[portal.ProductOrganization] != 2500 {
		t.Fatalf("replaced %+v", got)
	}
	// a negative limit is refused by the schema
	c.LimitCents = -1
	if err := db.SetBillingContract(ctx, c); err == nil {
		t.Fatal("negative limit stored")
	}
}

func TestCardOnFileReplace(t *testing.T) {
	db, _ := openBillingDB(t)
	ctx := context.Background()
	a, _ := billingAccount(t, db, "Example Corp", "admin@example.com")
	if _, err := db.CardOnFile(ctx, nil, a.ID); portal.ErrorCode(err) != portal.ENotFound {
		t.Fatalf("no card yet: %v", err)
	}
	c := billing.StoredCard{AccountID: a.ID, CardDetails: billing.CardDetails{Brand: "Visa", Last4: "4242", ExpMonth: 12, ExpYear: 2028}, GatewayRef: "tok_1"}
	if err := db.SaveCardOnFile(ctx, nil, c); err != nil {
		t.Fatal(err)
	}
	c.CardDetails, c.GatewayRef = billing.CardDetails{Brand: "Mastercard", Last4: "4444", ExpMonth: 1, ExpYear: 2030}, "tok_2"
	if err := db.SaveCardOnFile(ctx, nil, c); err != nil {
		t.Fatal(err)
	}
	got, err := db.CardOnFile(ctx, nil, a.ID)
	if err != nil || got.Brand != "Mastercard" || got.Last4 != "4444" || got.ExpMonth != 1 || got.ExpYear != 2030 || got.GatewayRef != "tok_2" {
		t.Fatalf("card %+v %v", got, err)
	}
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM billing_cards`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d cards on file, want 1", n)
	}
	// the schema keeps four digits only
	c.Last4 = "4242424242424242"
	if err := db.SaveCardOnFile(ctx, nil, c); err == nil {
		t.Fatal("a full number fitted in last4")
	}
}

func TestLedgerScopedToAccount(t *testing.T) {
	db, clock := openBillingDB(t)
	ctx := context.Background()
	a, ua := billingAccount(t, db, "Example Corp", "admin@example.com")
	b, ub := billingAccount(t, db, "Other BV", "admin@other.example")
	oa, ob := billingOrder(t, db, a.ID, ua.ID), billingOrder(t, db, b.ID, ub.ID)
	add := func(q billing.Querier, e billing.LedgerEntry) error {
		_, err := db.AddLedgerEntry(ctx, q, e)
		return err
	}
	if err := add(nil, billing.LedgerEntry{AccountID: a.ID, Kind: billing.KindDeposit, Method: portal.PayCard, AmountCents: 10000, GatewayRef: "ch_1"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if err := add(tx, billing.LedgerEntry{AccountID: a.ID, OrderID: oa, Kind: billing.KindHold, Method: portal.PayBalance, AmountCents: 4900}); err != nil {
			return err
		}
		return add(tx, billing.LedgerEntry{AccountID: a.ID, OrderID: oa, Kind: billing.KindDebit, Method: portal.PayBalance, AmountCents: 2900})
	})
	if err != nil {
		t.Fatal(err)
	}
	// account a cannot book against account b's order
	if err := add(nil, billing.LedgerEntry{AccountID: a.ID, OrderID: ob, Kind: billing.KindHold, Method: portal.PayBalance, AmountCents: 1}); portal.ErrorCode(err) != portal.ENotFound {
		t.Fatalf("cross-account booking: %v", err)
	}
	// nor a zero or negative amount, nor an unknown kind
	if err := add(nil, billing.LedgerEntry{AccountID: a.ID, Kind: billing.KindDeposit, Method: portal.PayCard, AmountCents: 0}); err == nil {
		t.Fatal("zero amount stored")
	}
	if err := add(nil, billing.LedgerEntry{AccountID: a.ID, Kind: "gift", Method: portal.PayCard, AmountCents: 5}); err == nil {
		t.Fatal("unknown kind stored")
	}
	rows, err := db.OrderLedger(ctx, nil, a.ID, oa)
	if err != nil || len(rows) != 2 || rows[0].Kind != billing.KindHold || rows[1].Kind != billing.KindDebit {
		t.Fatalf("order ledger %+v %v", rows, err)
	}
	if rows, _ := db.OrderLedger(ctx, nil, b.ID, oa); len(rows) != 0 {
		t.Fatalf("account b sees a's order rows: %+v", rows)
	}
	page, err := db.LedgerPage(ctx, a.ID, 2)
	if err != nil || len(page) != 2 || page[0].Kind != billing.KindDebit || page[1].Kind != billing.KindHold {
		t.Fatalf("page newest first, limited: %+v", page)
	}
	all, _ := db.LedgerPage(ctx, a.ID, 10)
	if d := all[2]; d.Kind != billing.KindDeposit || d.OrderID != 0 || d.GatewayRef != "ch_1" || !d.CreatedAt.Equal(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("deposit row %+v", d)
	}
	sums, err := db.LedgerSums(ctx, nil, a.ID)
	if err != nil || sums[billing.SumKey{Method: portal.PayCard, Kind: billing.KindDeposit}] != 10000 ||
		sums[billing.SumKey{Method: portal.PayBalance, Kind: billing.KindHold}] != 4900 || len(sums) != 3 {
		t.Fatalf("sums %+v %v", sums, err)
	}
	if sums, _ := db.LedgerSums(ctx, nil, b.ID); len(sums) != 0 {
		t.Fatalf("account b sums %+v", sums)
	}
}

// The running totals LedgerSums reads equal the ledger summed row by row,
// per account, after entries of every kind on two accounts; a failed insert
// (another account's order) adds nothing; the ledger cannot be edited.
func TestLedgerTotalsEqualTheLedger(t *testing.T) {
	db, _ := openBillingDB(t)
	ctx := context.Background()
	a, ua := billingAccount(t, db, "A", "a@example.com")
	b, ub := billingAccount(t, db, "B", "b@example.com")
	oa, ob := billingOrder(t, db, a.ID, ua.ID), billingOrder(t, db, b.ID, ub.ID)
	kinds := []billing.Kind{billing.KindAuthorize, billing.KindCapture, billing.KindRelease, billing.KindCommit, billing.KindUsage,
		billing.KindHold, billing.KindDebit, billing.KindDeposit}
	methods := []portal.PaymentMethod{portal.PayCard, portal.PayContract, portal.PayBalance}
	for i := 0; i < 90; i++ {
		acct, order := a.ID, oa
		if i%3 == 0 {
			acct, order = b.ID, ob
		}
		e := billing.LedgerEntry{AccountID: acct, OrderID: order, Kind: kinds[i%len(kinds)], Method: methods[i%len(methods)], AmountCents: int64(100 + i*7)}
		if _, err := db.AddLedgerEntry(ctx, nil, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.AddLedgerEntry(ctx, nil, billing.LedgerEntry{AccountID: a.ID, OrderID: ob, Kind: billing.KindDebit, Method: portal.PayBalance, AmountCents: 1_000_000}); err == nil {
		t.Fatal("an entry on another account's order was accepted")
	}
	for _, acct := range []int64{a.ID, b.ID} {
		got, err := db.LedgerSums(ctx, nil, acct)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query(`SELECT method, kind, SUM(amount_cents) FROM billing_ledger WHERE account_id = ? GROUP BY method, kind`, acct)
		if err != nil {
			t.Fatal(err)
		}
		want := map[billing.SumKey]int64{}
		for rows.Next() {
			var m, k string
			var sum int64
			rows.Scan(&m, &k, &sum)
			want[billing.SumKey{Method: portal.PaymentMethod(m), Kind: billing.Kind(k)}] = sum
		}
		rows.Close()
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("account %d: %d totals, want %d", acct, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("account %d %v: total %d, ledger sum %d", acct, k, got[k], v)
			}
		}
	}
	if _, err := db.Exec(`UPDATE billing_ledger SET amount_cents = 1`); err == nil {
		t.Error("the ledger was updated")
	}
	if _, err := db.Exec(`DELETE FROM billing_ledger`); err == nil {
		t.Error("the ledger was deleted")
	}
}
