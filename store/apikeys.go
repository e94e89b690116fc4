package store

import (
	"context"
	"database/sql"
	"strings"
	"time"
	"unicode/utf8"

	"certdesk/internal/portal"
)

// APIKeyPrefix starts every API key, so a leaked key is recognisable
// (secret scanners) and cannot be confused with another token.
const APIKeyPrefix = "cd_"

// APIKey is an API key's record; the key itself is never stored, only
// its SHA-256.
type APIKey struct {
	ID         int64
	AccountID  int64
	UserID     int64
	UserEmail  string // for lists
	Name       string
	Prefix     string // the first characters of the key, shown in lists
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used
	RevokedAt  time.Time // zero: active
}

// Revoked reports whether the key has been revoked.
func (k APIKey) Revoked() bool { return !k.RevokedAt.IsZero() }

// NewAPIKeySecret returns a new key: "cd_" + 160 random bits
// (portal.NewToken).
func NewAPIKeySecret() string { return APIKeyPrefix + portal.NewToken() }

// apiKeyDisplayPrefix is what lists show of a key: "cd_" and 8 characters.
func apiKeyDisplayPrefix(secret string) string {
	if len(secret) > len(APIKeyPrefix)+8 {
		return secret[:len(APIKeyPrefix)+8]
	}
	return secret
}

// CreateAPIKey makes a key for a user of the account and returns the key
// (to show once) with its record. The user must belong to the account.
func (db *DB) CreateAPIKey(ctx context.Context, accountID, userID int64, name string) (string, APIKey, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", APIKey{}, portal.FieldError("name", "apikey.name_required", "Give the key a name, for example the system that will use it.")
	}
	if utf8.RuneCountInString(name) > 80 {
		return "", APIKey{}, portal.FieldError("name", "apikey.name_too_long", "The name is too long (at most 80 characters).")
	}
	u, err := db.UserByID(ctx, userID)
	if err != nil {
		return "", APIKey{}, err
	}
	if u.AccountID == 0 || u.AccountID != accountID {
		return "", APIKey{}, portal.Errorf(portal.ENotFound, "user not found")
	}
	secret := NewAPIKeySecret()
	k := APIKey{AccountID: accountID, UserID: userID, UserEmail: u.Email, Name: name, Prefix: apiKeyDisplayPrefix(secret), CreatedAt: db.now()}
	res, err := db.ExecContext(ctx, `INSERT INTO api_keys(account_id, user_id, name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		k.AccountID, k.UserID, k.Name, k.Prefix, portal.HashToken(secret), fmtTime(k.CreatedAt))
	if err != nil {
		return "", APIKey{}, err
	}
	k.ID, _ = res.LastInsertId()
	return secret, k, nil
}

const apiKeyCols = `k.id, k.account_id, k.user_id, u.email, k.name, k.prefix, k.created_at, k.last_used_at, k.revoked_at`

func scanAPIKey(row interface{ Scan(...any) error }) (APIKey, error) {
	var k APIKey
	var created string
	var used, revoked sql.NullString
	err := row.Scan(&k.ID, &k.AccountID, &k.UserID, &k.UserEmail, &k.Name, &k.Prefix, &created, &used, &revoked)
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = parseTime(created), parseNullTime(used), parseNullTime(revoked)
	return k, err
}

// APIKeysByAccount lists an account's keys, newest first (revoked ones too).
func (db *DB) APIKeysByAccount(ctx context.Context, accountID int64) ([]APIKey, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+apiKeyCols+` FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.account_id = ? ORDER BY k.id DESC`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// APIKeyBySecret finds a key by the key itself (looked up by its hash).
// An unknown key is ENotFound; a revoked one is returned with RevokedAt
// set, for the caller to refuse.
func (db *DB) APIKeyBySecret(ctx context.Context, secret string) (APIKey, error) {
	if !strings.HasPrefix(secret, APIKeyPrefix) || len(secret) > 200 {
		return APIKey{}, portal.Errorf(portal.ENotFound, "API key not found")
	}
	k, err := scanAPIKey(db.QueryRowContext(ctx, `SELECT `+apiKeyCols+` FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.key_hash = ?`, portal.HashToken(secret)))
	return k, notFound(err, "API key")
}

// RevokeAPIKey revokes one of the account's keys; another account's key
// is ENotFound. Revoking twice is harmless.
func (db *DB) RevokeAPIKey(ctx context.Context, accountID, id int64) (APIKey, error) {
	if _, err := db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL`,
		fmtTime(db.now()), id, accountID); err != nil {
		return APIKey{}, err
	}
	k, err := scanAPIKey(db.QueryRowContext(ctx, `SELECT `+apiKeyCols+` FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.id = ? AND k.account_id = ?`, id, accountID))
	return k, notFound(err, "API key")
}

// TouchAPIKey records a key's use at at, at most once per minute (a busy
// client does not turn every request into a write).
func (db *DB) TouchAPIKey(ctx context.Context, id int64, at time.Time) error {
	_, err := db.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`,
		fmtTime(at), id, fmtTime(at.Add(-time.Minute)))
	return err
}
