package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"certdesk/internal/identity"
	"certdesk/internal/portal"
)

func cmdUser(args []string) error {
	if len(args) == 0 || args[0] != "add" {
		return errors.New("usage: certdesk user add --email E --name N --role ROLE [--account NAME]")
	}
	var cfg Config
	var email, name, role, account string
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	commonFlags(fs, &cfg)
	fs.StringVar(&email, "email", "", "email address")
	fs.StringVar(&name, "name", "", "full name")
	fs.StringVar(&role, "role", "user", "account_admin, user, validation_agent or ca_admin")
	fs.StringVar(&account, "account", "", "customer account name (created when missing); required for account_admin and user")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	r := portal.Role(role)
	if !r.Valid() {
		return fmt.Errorf("unknown role %q", role)
	}
	norm, ok := portal.NormalizeEmail(email)
	if !ok {
		return fmt.Errorf("invalid email address %q", email)
	}
	if strings.TrimSpace(name) == "" {
		return errors.New("--name is required")
	}
	ctx := context.Background()
	db, err := openStore(ctx, &cfg, portal.SystemClock{})
	if err != nil {
		return err
	}
	defer db.Close()
	u := portal.User{Email: norm, Name: name, Role: r}
	if !r.IsStaff() {
		if account == "" {
			return errors.New("--account is required for customer roles")
		}
		a, err := db.AccountByName(ctx, account)
		if portal.ErrorCode(err) == portal.ENotFound {
			a, err = db.CreateAccount(ctx, account)
		}
		if err != nil {
			return err
		}
		u.AccountID = a.ID
	}
	pw := identity.GeneratePassword()
	if u.PasswordHash, err = identity.HashPassword(pw); err != nil {
		return err
	}
	if _, err := db.CreateUser(ctx, u); err != nil {
		return err
	}
	// The password was generated here, so it is printed once, here only.
	fmt.Printf("user %s (%s) created; password: %s\n", norm, r, pw)
	return nil
}
