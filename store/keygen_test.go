package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"certdesk/internal/ordering"
	"certdesk/internal/portal"
)

// A new link of a recipient replaces its live links (not spent ones, not
// other recipients'); a token hash is unique; a link is spent once.
func TestKeyGenLinks(t *testing.T) {
	ctx := context.Background()
	clock := portal.NewFixedClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	db, err := Open(ctx, filepath.Join(t.TempDir(), "kg.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, _ := db.CreateAccount(ctx, "Example Corp")
	u, err := db.CreateUser(ctx, portal.User{AccountID: a.ID, Email: "req@example.com", Name: "R", Role: portal.RoleUser, PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	o := portal.Order{AccountID: a.ID, UserID: u.ID, Product: portal.ProductIndividual, SignatureHash: portal.SHA256, PeriodStart: now,
		PeriodEnd: now.AddDate(1, 0, 0), PaymentMethod: portal.PayContract, AgreementVersion: "t", AgreedAt: now,
		Recipients: []portal.Recipient{{Email: "a@example.com", CommonName: "a@example.com", Status: portal.RecipientAwaitingKeyGen},
			{Email: "b@example.com", CommonName: "b@example.com", Status: portal.RecipientAwaitingKeyGen}}}
	if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.InsertOrder(ctx, tx, &o, "") }); err != nil {
		t.Fatal(err)
	}
	ra, rb := o.Recipients[0].ID, o.Recipients[1].ID
	insert := func(rid int64, hash string) ordering.KeyGenLink {
		t.Helper()
		l := ordering.KeyGenLink{RecipientID: rid, AccountID: a.ID, TokenHash: hash, CreatedAt: clock.Now(),
			ExpiresAt: clock.Now().Add(portal.KeyGenLinkLifetime), SentBy: "system"}
		if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.InsertKeyGenLink(ctx, tx, &l) }); err != nil {
			t.Fatalf("insert %s: %v", hash, err)
		}
		return l
	}
	get := func(hash string) ordering.KeyGenLink {
		t.Helper()
		l, err := db.KeyGenLinkByHash(ctx, nil, hash)
		if err != nil {
			t.Fatalf("%s: %v", hash, err)
		}
		return l
	}
	a1 := insert(ra, "h-a1")
	insert(rb, "h-b1")
	clock.Advance(time.Hour)
	a2 := insert(ra, "h-a2")

	if l := get("h-a1"); l.ReplacedAt.IsZero() || !l.ReplacedAt.Equal(a2.CreatedAt) || l.State(clock.Now()) != ordering.LinkReplaced {
		t.Errorf("old link of a: %+v", l)
	}
	if l := get("h-b1"); !l.ReplacedAt.IsZero() {
		t.Errorf("b's link was replaced by a's new link: %+v", l)
	}
	if l := get("h-a2"); l.State(clock.Now()) != ordering.LinkUsable || !l.ExpiresAt.Equal(a2.ExpiresAt) || l.SentBy != "system" {
		t.Errorf("new link: %+v", l)
	}
	if l, err := db.LatestKeyGenLink(ctx, nil, ra); err != nil || l.ID != a2.ID {
		t.Errorf("latest of a: %+v %v", l, err)
	}
	if _, err := db.KeyGenLinkByHash(ctx, nil, "nope"); portal.ErrorCode(err) != portal.ENotFound {
		t.Errorf("unknown hash: %v", err)
	}
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		return db.InsertKeyGenLink(ctx, tx, &ordering.KeyGenLink{RecipientID: rb, AccountID: a.ID, TokenHash: "h-a2",
			CreatedAt: clock.Now(), ExpiresAt: clock.Now()})
	}); err == nil {
		t.Error("a token hash was stored twice")
	}
	_ = a1

	// Spent once; a spent link is not "replaced" by a later link.
	if ok, err := db.SpendKeyGenLink(ctx, nil, a2.ID, 0, clock.Now()); err != nil || !ok {
		t.Fatalf("spend: %v %v", ok, err)
	}
	if ok, _ := db.SpendKeyGenLink(ctx, nil, a2.ID, 0, clock.Now()); ok {
		t.Error("spent twice")
	}
	insert(ra, "h-a3")
	if l := get("h-a2"); l.State(clock.Now()) != ordering.LinkSpent || !l.ReplacedAt.IsZero() {
		t.Errorf("spent link after a new one: %+v", l)
	}
	if err := db.ExpireKeyGenLinksOf(ctx, ra, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if l := get("h-a3"); l.State(clock.Now()) != ordering.LinkExpired {
		t.Errorf("after ExpireKeyGenLinksOf: %s", l.State(clock.Now()))
	}
}
