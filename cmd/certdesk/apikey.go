package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"certdesk/internal/portal"
	"certdesk/store"
)

// cmdAPIKey: certdesk apikey create --user EMAIL [--name NAME]. The key is
// printed once, here only; the database keeps its SHA-256.
func cmdAPIKey(args []string) error {
	const usageText = "usage: certdesk apikey create --user EMAIL [--name NAME] [--data-dir DIR]"
	if len(args) == 0 || args[0] != "create" {
		return errors.New(usageText)
	}
	var cfg Config
	var email, name string
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	commonFlags(fs, &cfg)
	fs.StringVar(&email, "user", "", "email address of the customer user the key acts as")
	fs.StringVar(&name, "name", "command line", "name shown in the account's key list")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if email == "" {
		return errors.New("--user is required\n" + usageText)
	}
	ctx := context.Background()
	db, err := openStore(ctx, &cfg, portal.SystemClock{})
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := db.UserByEmail(ctx, email)
	if portal.ErrorCode(err) == portal.ENotFound {
		return fmt.Errorf("no user %q", email)
	}
	if err != nil {
		return err
	}
	if u.AccountID == 0 {
		return fmt.Errorf("%s is CA staff: API keys belong to customer accounts", u.Email)
	}
	secret, k, err := db.CreateAPIKey(ctx, u.AccountID, u.ID, name)
	if err != nil {
		return errors.New(portal.ErrorMessage(err))
	}
	_ = db.Audit(ctx, nil, store.AuditEntry{Actor: "cli", Action: "apikey.created", ObjectType: "api_key", ObjectID: k.ID,
		AccountID: u.AccountID, Detail: k.Prefix + " for " + u.Email})
	fmt.Printf("API key %q (%s…) created for %s; it is shown only now:\n%s\n", k.Name, k.Prefix, u.Email, secret)
	return nil
}
