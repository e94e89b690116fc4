package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"certdesk/internal/portal"
)

// The orders list attaches each order's own recipients, in form order,
// read in one query for the page (and another account's orders never show).
func TestListOrdersAttachesRecipients(t *testing.T) {
	ctx := context.Background()
	clock := portal.NewFixedClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	db, err := Open(ctx, filepath.Join(t.TempDir(), "o.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, _ := db.CreateAccount(ctx, "A")
	b, _ := db.CreateAccount(ctx, "B")
	ua, _ := db.CreateUser(ctx, portal.User{AccountID: a.ID, Email: "a@a.test", Name: "A", Role: portal.RoleUser, PasswordHash: "x"})
	ub, _ := db.CreateUser(ctx, portal.User{AccountID: b.ID, Email: "b@b.test", Name: "B", Role: portal.RoleUser, PasswordHash: "x"})
	mk := func(u portal.User, emails ...string) int64 {
		o := portal.Order{AccountID: u.AccountID, UserID: u.ID, Product: portal.ProductOrganization, SignatureHash: portal.SHA256,
			PeriodStart: clock.Now(), PeriodEnd: clock.Now().AddDate(1, 0, 0), PaymentMethod: portal.PayContract, AgreementVersion: "t", AgreedAt: clock.Now()}
		for _, e := range emails {
			o.Recipients = append(o.Recipients, portal.Recipient{Email: e, CommonName: e, Status: portal.RecipientAwaitingKeyGen})
		}
		if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.InsertOrder(ctx, tx, &o, "") }); err != nil {
			t.Fatal(err)
		}
		return o.ID
	}
	o1 := mk(ua, "x1@a.test", "x2@a.test")
	mk(ub, "other@b.test")
	o3 := mk(ua, "y1@a.test", "y2@a.test", "y3@a.test")
	orders, total, err := db.ListOrders(ctx, a.ID, OrderFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || len(orders) != 2 || orders[0].ID != o3 || orders[1].ID != o1 {
		t.Fatalf("orders: %d %+v", total, orders)
	}
	want := map[int64][]string{o1: {"x1@a.test", "x2@a.test"}, o3: {"y1@a.test", "y2@a.test", "y3@a.test"}}
	for _, o := range orders {
		var got []string
		for _, r := range o.Recipients {
			got = append(got, r.Email)
		}
		if len(got) != len(want[o.ID]) {
			t.Fatalf("order %d recipients %v", o.ID, got)
		}
		for i := range got {
			if got[i] != want[o.ID][i] {
				t.Fatalf("order %d recipients %v, want %v", o.ID, got, want[o.ID])
			}
		}
	}
	if orders, _, _ := db.ListOrders(ctx, a.ID, OrderFilter{Email: "y2"}); len(orders) != 1 || orders[0].ID != o3 {
		t.Fatalf("email filter: %+v", orders)
	}
}

// OrderHead is OrderByID without the recipients' rows, with their number.
func TestOrderHead(t *testing.T) {
	ctx := context.Background()
	clock := portal.NewFixedClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	db, err := Open(ctx, filepath.Join(t.TempDir(), "o.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, _ := db.CreateAccount(ctx, "A")
	u, _ := db.CreateUser(ctx, portal.User{AccountID: a.ID, Email: "a@a.test", Name: "A", Role: portal.RoleUser, PasswordHash: "x"})
	ids := map[int]int64{}
	for _, n := range []int{1, 3} {
		o := portal.Order{AccountID: a.ID, UserID: u.ID, Product: portal.ProductIndividual, SignatureHash: portal.SHA384,
			PeriodStart: clock.Now(), PeriodEnd: clock.Now().AddDate(2, 0, 0), PaymentMethod: portal.PayContract, AmountCents: 4200,
			AdditionalEmails: []string{"cc@a.test", "dd@a.test"}, AgreementVersion: "t", AgreedAt: clock.Now()}
		for i := 0; i < n; i++ {
			o.Recipients = append(o.Recipients, portal.Recipient{Email: "r@a.test", CommonName: "r", Status: portal.RecipientAwaitingKeyGen})
		}
		if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.InsertOrder(ctx, tx, &o, "") }); err != nil {
			t.Fatal(err)
		}
		ids[n] = o.ID
	}
	for n, id := range ids {
		full, err := db.OrderByID(ctx, nil, id)
		if err != nil {
			t.Fatal(err)
		}
		head, count, err := db.OrderHead(ctx, nil, id)
		if err != nil {
			t.Fatal(err)
		}
		if count != n || len(full.Recipients) != n || head.Recipients != nil {
			t.Fatalf("order %d: count %d, recipients %d/%d, want %d", id, count, len(full.Recipients), len(head.Recipients), n)
		}
		full.Recipients = nil
		if fmt.Sprintf("%+v", head) != fmt.Sprintf("%+v", full) {
			t.Fatalf("OrderHead differs from OrderByID:\n%+v\n%+v", head, full)
		}
	}
	if _, _, err := db.OrderHead(ctx, nil, 9999); portal.ErrorCode(err) != portal.ENotFound {
		t.Fatalf("unknown order: %v", err)
	}
}
