package store

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"certdesk/internal/portal"
)

func TestAPIKeyLifecycle(t *testing.T) {
	db, clock := openBillingDB(t)
	ctx := context.Background()
	a, u := billingAccount(t, db, "Example Corp", "admin@example.com")
	b, ub := billingAccount(t, db, "Other BV", "admin@other.example")

	if _, _, err := db.CreateAPIKey(ctx, a.ID, u.ID, "  "); portal.ErrorCode(err) != portal.EInvalid {
		t.Fatalf("empty name: %v", err)
	}
	// a user of another account cannot get a key for this one
	if _, _, err := db.CreateAPIKey(ctx, a.ID, ub.ID, "ci"); portal.ErrorCode(err) != portal.ENotFound {
		t.Fatalf("key for another account's user: %v", err)
	}
	secret, k, err := db.CreateAPIKey(ctx, a.ID, u.ID, "CI pipeline")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "cd_") || len(secret) < 3+32 || k.Prefix != secret[:11] || !strings.HasPrefix(secret, k.Prefix) {
		t.Fatalf("secret %q prefix %q", secret, k.Prefix)
	}
	secret2, _, _ := db.CreateAPIKey(ctx, a.ID, u.ID, "second")
	if secret2 == secret {
		t.Fatal("two keys alike")
	}
	// stored hashed: the key itself is not in the table
	var hash string
	db.QueryRow(`SELECT key_hash FROM api_keys WHERE id = ?`, k.ID).Scan(&hash)
	if hash != portal.HashToken(secret) || strings.Contains(hash, secret) {
		t.Fatalf("stored %q", hash)
	}
	db.Exec(`PRAGMA wal_checkpoint(FULL)`)
	if raw, _ := os.ReadFile(dbPathOf(t, db)); strings.Contains(string(raw), secret) {
		t.Fatal("API key in the database file")
	}

	got, err := db.APIKeyBySecret(ctx, secret)
	if err != nil || got.ID != k.ID || got.UserID != u.ID || got.UserEmail != "admin@example.com" || got.Revoked() || !got.LastUsedAt.IsZero() {
		t.Fatalf("lookup %+v %v", got, err)
	}
	for _, bad := range []string{"", "cd_nope", secret + "x", strings.TrimPrefix(secret, "cd_")} {
		if _, err := db.APIKeyBySecret(ctx, bad); portal.ErrorCode(err) != portal.ENotFound {
			t.Errorf("lookup %q: %v", bad, err)
		}
	}

	// last use: written, then at most once a minute
	t0 := clock.Now()
	db.TouchAPIKey(ctx, k.ID, t0)
	db.TouchAPIKey(ctx, k.ID, t0.Add(30*time.Second))
	got, _ = db.APIKeyBySecret(ctx, secret)
	if !got.LastUsedAt.Equal(t0) {
		t.Fatalf("last used %v, want %v", got.LastUsedAt, t0)
	}
	db.TouchAPIKey(ctx, k.ID, t0.Add(61*time.Second))
	got, _ = db.APIKeyBySecret(ctx, secret)
	if !got.LastUsedAt.Equal(t0.Add(61 * time.Second)) {
		t.Fatalf("last used not updated after a minute: %v", got.LastUsedAt)
	}

	// another account cannot revoke it, nor see it
	if _, err := db.RevokeAPIKey(ctx, b.ID, k.ID); portal.ErrorCode(err) != portal.ENotFound {
		t.Fatalf("cross-account revoke: %v", err)
	}
	if ks, _ := db.APIKeysByAccount(ctx, b.ID); len(ks) != 0 {
		t.Fatalf("other account lists %d keys", len(ks))
	}
	clock.Advance(time.Hour)
	rk, err := db.RevokeAPIKey(ctx, a.ID, k.ID)
	if err != nil || !rk.Revoked() || !rk.RevokedAt.Equal(clock.Now()) {
		t.Fatalf("revoke %+v %v", rk, err)
	}
	clock.Advance(time.Hour)
	if rk2, _ := db.RevokeAPIKey(ctx, a.ID, k.ID); !rk2.RevokedAt.Equal(rk.RevokedAt) {
		t.Fatal("second revoke moved the revocation time")
	}
	got, _ = db.APIKeyBySecret(ctx, secret)
	if !got.Revoked() {
		t.Fatal("revoked key looks active")
	}
	ks, err := db.APIKeysByAccount(ctx, a.ID)
	if err != nil || len(ks) != 2 || ks[0].Name != "second" || !ks[1].Revoked() {
		t.Fatalf("list %+v %v", ks, err)
	}
}

func dbPathOf(t *testing.T, db *DB) string {
	t.Helper()
	var seq int
	var name, file string
	if err := db.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}
