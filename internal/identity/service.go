package identity

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"certdesk/internal/portal"
)

// Store is what identity needs from the database.
type Store interface {
	UserByEmail(ctx context.Context, email string) (portal.User, error)
	CreateUserTx(ctx context.Context, tx *sql.Tx, u portal.User) (portal.User, error)
	RecordSignInFailure(ctx context.Context, email, ip string) error
	SignInFailures(ctx context.Context, email, ip string, since time.Time) (byEmail, byIP int, err error)
	ClearSignInFailures(ctx context.Context, email string) error
	CountUsersWithRole(ctx context.Context, role portal.Role) (int, error)
	CreateSetupToken(ctx context.Context, hash, purpose string, expires time.Time) error
	SetupTokenState(ctx context.Context, hash, purpose string) (string, error)
	UseSetupToken(ctx context.Context, tx *sql.Tx, hash, purpose string) error
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
}

// Rate limits for failed sign-ins.
const (
	FailureWindow     = 15 * time.Minute
	MaxFailuresPerAcc = 5  // per account (email) per window
	MaxFailuresPerIP  = 20 // per client address per window
	SetupLinkLifetime = 24 * time.Hour
	setupPurpose      = "first_ca_admin"
)

// Service signs people in and runs first-run setup.
type Service struct {
	Store Store
	Clock portal.Clock
}

var errBadCredentials = &portal.Error{Code: portal.EUnauthorized, Field: "password", Key: "signin.bad_credentials",
	Message: "The email address or password is not correct."}

// SignIn checks credentials, enforcing the failure limits per account and
// per address before any password is checked.
func (s *Service) SignIn(ctx context.Context, email, password, ip string) (portal.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || password == "" {
		return portal.User{}, errBadCredentials
	}
	if len(email) > 254 || len(password) > MaxPasswordLength {
		return portal.User{}, errBadCredentials
	}
	byEmail, byIP, err := s.Store.SignInFailures(ctx, email, ip, s.Clock.Now().Add(-FailureWindow))
	if err != nil {
		return portal.User{}, err
	}
	if byEmail >= MaxFailuresPerAcc || byIP >= MaxFailuresPerIP {
		return portal.User{}, &portal.Error{Code: portal.ETooMany, Field: "password", Key: "signin.rate_limited",
			Message: "Too many failed sign-ins. Wait 15 minutes and try again."}
	}
	u, err := s.Store.UserByEmail(ctx, email)
	if err != nil && portal.ErrorCode(err) != portal.ENotFound {
		return portal.User{}, err
	}
	hash := u.PasswordHash
	if err != nil {
		hash = dummyHash
	}
	if !CheckPassword(hash, password) || err != nil {
		if rerr := s.Store.RecordSignInFailure(ctx, email, ip); rerr != nil {
			return portal.User{}, rerr
		}
		return portal.User{}, errBadCredentials
	}
	if err := s.Store.ClearSignInFailures(ctx, email); err != nil {
		return portal.User{}, err
	}
	return u, nil
}

// SetupNeeded reports whether no CA administrator exists yet.
func (s *Service) SetupNeeded(ctx context.Context) (bool, error) {
	n, err := s.Store.CountUsersWithRole(ctx, portal.RoleCAAdmin)
	return n == 0, err
}

// NewSetupLink creates a one-time setup token (returned once, stored
// hashed) valid for SetupLinkLifetime.
func (s *Service) NewSetupLink(ctx context.Context) (string, error) {
	tok := portal.NewToken()
	if err := s.Store.CreateSetupToken(ctx, portal.HashToken(tok), setupPurpose, s.Clock.Now().Add(SetupLinkLifetime)); err != nil {
		return "", err
	}
	return tok, nil
}

// SetupState tells whether a setup token can be used: ok, expired, used, unknown.
func (s *Service) SetupState(ctx context.Context, token string) (string, error) {
	if token == "" || len(token) > 100 {
		return "unknown", nil
	}
	return s.Store.SetupTokenState(ctx, portal.HashToken(token), setupPurpose)
}

// SetupInput is the first CA administrator's form.
type SetupInput struct {
	Name, Email, Password, Confirm string
}

// ValidateNewUser checks a name, email and password pair for a new user.
func ValidateNewUser(name, email, password, confirm string) (string, error) {
	var fe portal.FieldErrors
	if strings.TrimSpace(name) == "" || len(name) > 200 {
		fe.Add("name", "form.name_required", "Enter a name (at most 200 characters).")
	}
	norm, ok := portal.NormalizeEmail(email)
	if !ok {
		fe.Add("email", "form.email_invalid", "Enter a valid email address, like name@example.com.")
	}
	switch {
	case len(password) < MinPasswordLength:
		fe.Add("password", "form.password_short", "Use at least 12 characters.")
	case len(password) > MaxPasswordLength:
		fe.Add("password", "form.password_long", "Use at most 256 characters.")
	case password != confirm:
		fe.Add("confirm", "form.password_mismatch", "The passwords do not match.")
	}
	return norm, fe.Err()
}

// CompleteSetup creates the first CA administrator, spending the token in
// the same transaction.
func (s *Service) CompleteSetup(ctx context.Context, token string, in SetupInput) (portal.User, error) {
	email, err := ValidateNewUser(in.Name, in.Email, in.Password, in.Confirm)
	if err != nil {
		return portal.User{}, err
	}
	hash, err := HashPassword(in.Password)
	if err != nil {
		return portal.User{}, err
	}
	var u portal.User
	err = s.Store.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.Store.UseSetupToken(ctx, tx, portal.HashToken(token), setupPurpose); err != nil {
			return err
		}
		var err error
		u, err = s.Store.CreateUserTx(ctx, tx, portal.User{Email: email, Name: strings.TrimSpace(in.Name), Role: portal.RoleCAAdmin, PasswordHash: hash})
		return err
	})
	if err != nil {
		var pe *portal.Error
		if errors.As(err, &pe) {
			return portal.User{}, pe
		}
		return portal.User{}, err
	}
	return u, nil
}
