package main

import (
	"context"
	"fmt"
	"log/slog"

	"certdesk/internal/identity"
	"certdesk/internal/portal"
	"certdesk/store"
)

// Demo data for dev mode (make run): the customer account Example Corp
// with its administrator, a validation agent and a CA administrator (for
// the dev mailbox). Passwords are generated anew at every start and
// printed to standard output, never logged.
var devUsers = []struct {
	Email, Name string
	Role        portal.Role
}{
	{"admin@example.com", "Alex Admin", portal.RoleAccountAdmin},
	{"agent@certdesk.test", "Vera Validator", portal.RoleValidationAgent},
	{"ca-admin@certdesk.test", "Casey CA", portal.RoleCAAdmin},
}

// devSeeders let features add demo data (organizations, domains, ...).
var devSeeders []func(ctx context.Context, db *store.DB, a *app, account portal.Account, admin portal.User) error

func seedDev(ctx context.Context, db *store.DB, log *slog.Logger, a *app) error {
	acct, err := db.AccountByName(ctx, "Example Corp")
	if portal.ErrorCode(err) == portal.ENotFound {
		acct, err = db.CreateAccount(ctx, "Example Corp")
	}
	if err != nil {
		return err
	}
	var admin portal.User
	for _, du := range devUsers {
		pw := identity.GeneratePassword()
		hash, err := identity.HashPassword(pw)
		if err != nil {
			return err
		}
		u, err := db.UserByEmail(ctx, du.Email)
		switch {
		case err == nil:
			if err := db.SetPasswordHash(ctx, u.ID, hash); err != nil {
				return err
			}
		case portal.ErrorCode(err) == portal.ENotFound:
			nu := portal.User{Email: du.Email, Name: du.Name, Role: du.Role, PasswordHash: hash}
			if !du.Role.IsStaff() {
				nu.AccountID = acct.ID
			}
			if u, err = db.CreateUser(ctx, nu); err != nil {
				return err
			}
		default:
			return err
		}
		if du.Role == portal.RoleAccountAdmin {
			admin = u
		}
		fmt.Printf("DEV SIGN-IN role=%s email=%s password=%s\n", du.Role, du.Email, pw)
	}
	for _, seed := range devSeeders {
		if err := seed(ctx, db, a, acct, admin); err != nil {
			return err
		}
	}
	log.Info("dev mode: demo data ready", "account", acct.Name)
	return nil
}
