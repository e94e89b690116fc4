package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"certdesk/internal/billing"
	"certdesk/internal/portal"
	"certdesk/store"
)

// CA staff give an account contract terms from the command line: the
// contract becomes the account's default payment method with its limit and
// prices; it can be replaced and switched off; bad input is refused with a
// message and changes nothing.
func TestContractCommand(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "certdesk.db"), portal.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	acct, err := db.CreateAccount(ctx, "Acme B.V.")
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runContract(append(args, "--data-dir", dir), &out)
		return out.String(), err
	}

	if out, err := run("show", "--account", "Acme B.V."); err != nil || !strings.Contains(out, "no contract") {
		t.Fatalf("show before: %q %v", out, err)
	}
	for _, bad := range [][]string{
		{"set", "--account", "Acme B.V.", "--limit", "5000"},                                         // no reference
		{"set", "--account", "Acme B.V.", "--reference", "C-1", "--limit", "-5"},                     // negative
		{"set", "--account", "Acme B.V.", "--reference", "C-1", "--limit", "lots"},                   // not an amount
		{"set", "--account", "Acme B.V.", "--reference", "C-1", "--limit", "5000", "--price", "x=1"}, // unknown product
		{"set", "--account", "Nobody", "--reference", "C-1", "--limit", "5000"},                      // unknown account
		{"set", "--reference", "C-1", "--limit", "5000"},                                             // no account
		{"delete", "--account", "Acme B.V."},
	} {
		if _, err := run(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	out, err := run("set", "--account", "Acme B.V.", "--reference", "C-2026-7", "--limit", "5000",
		"--price", "secure_email_sponsor=39.50")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "C-2026-7 (active), limit €5,000.00") || !strings.Contains(out, "secure_email_sponsor: €39.50") {
		t.Fatalf("set printed %q", out)
	}

	db, err = store.Open(ctx, filepath.Join(dir, "certdesk.db"), portal.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := billing.NewService(db, billing.NewTestGateway(portal.SystemClock{}), portal.SystemClock{})
	if m := svc.DefaultMethod(ctx, acct.ID); m != portal.PayContract {
		t.Fatalf("default payment method %q, want the contract", m)
	}
	sponsor, _ := portal.ProductByID(portal.ProductBusiness)
	if per, _ := svc.Quote(ctx, acct.ID, sponsor, 2, 365); per != 3950 {
		t.Fatalf("contract price %d cents, want 3950", per)
	}
	if _, err := run("set", "--account", "Acme B.V.", "--reference", "C-2026-7", "--limit", "5000", "--inactive"); err != nil {
		t.Fatal(err)
	}
	if m := svc.DefaultMethod(ctx, acct.ID); m == portal.PayContract {
		t.Fatal("an inactive contract is still the default payment method")
	}
}
