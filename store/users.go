package store

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"certdesk/internal/portal"
)

// CreateAccount inserts a customer account.
func (db *DB) CreateAccount(ctx context.Context, name string) (portal.Account, error) {
	now := db.now()
	res, err := db.ExecContext(ctx, `INSERT INTO accounts(name, created_at) VALUES (?, ?)`, name, fmtTime(now))
	if err != nil {
		return portal.Account{}, err
	}
	id, _ := res.LastInsertId()
	return portal.Account{ID: id, Name: name, CreatedAt: now}, nil
}

// AccountByID loads an account.
func (db *DB) AccountByID(ctx context.Context, id int64) (portal.Account, error) {
	var a portal.Account
	var created string
	err := db.QueryRowContext(ctx, `SELECT id, name, created_at FROM accounts WHERE id = ?`, id).Scan(&a.ID, &a.Name, &created)
	if err != nil {
		return a, notFound(err, "account")
	}
	a.CreatedAt = parseTime(created)
	return a, nil
}

// AccountByName finds an account by its exact name.
func (db *DB) AccountByName(ctx context.Context, name string) (portal.Account, error) {
	var id int64
	if err := db.QueryRowContext(ctx, `SELECT id FROM accounts WHERE name = ?`, name).Scan(&id); err != nil {
		return portal.Account{}, notFound(err, "account")
	}
	return db.AccountByID(ctx, id)
}

// CreateUser inserts a user; a duplicate email is a conflict.
func (db *DB) CreateUser(ctx context.Context, u portal.User) (portal.User, error) {
	u.CreatedAt = db.now()
	u.Email = strings.ToLower(u.Email)
	var acct any
	if u.AccountID != 0 {
		acct = u.AccountID
	}
	res, err := db.ExecContext(ctx, `INSERT INTO users(account_id, email, name, role, lang, password_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, acct, u.Email, u.Name, string(u.Role), u.Lang, u.PasswordHash, fmtTime(u.CreatedAt))
	if isUnique(err) {
		return u, &portal.Error{Code: portal.EConflict, Field: "email", Key: "user.email_taken", Message: "A user with this email address already exists."}
	}
	if err != nil {
		return u, err
	}
	u.ID, _ = res.LastInsertId()
	return u, nil
}

const userCols = `id, COALESCE(account_id, 0), email, name, role, lang, password_hash, created_at`

func scanUser(row interface{ Scan(...any) error }) (portal.User, error) {
	var u portal.User
	var role, created string
	err := row.Scan(&u.ID, &u.AccountID, &u.Email, &u.Name, &role, &u.Lang, &u.PasswordHash, &created)
	u.Role = portal.Role(role)
	u.CreatedAt = parseTime(created)
	return u, err
}

// UserByEmail finds a user by email (case-insensitive).
func (db *DB) UserByEmail(ctx context.Context, email string) (portal.User, error) {
	u, err := scanUser(db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE email = ?`, strings.ToLower(strings.TrimSpace(email))))
	return u, notFound(err, "user")
}

// UserByID loads a user.
func (db *DB) UserByID(ctx context.Context, id int64) (portal.User, error) {
	u, err := scanUser(db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	return u, notFound(err, "user")
}

// UsersByAccount lists an account's users.
func (db *DB) UsersByAccount(ctx context.Context, accountID int64) ([]portal.User, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+userCols+` FROM users WHERE account_id = ? ORDER BY email`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []portal.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CountUsersWithRole counts users holding a role.
func (db *DB) CountUsersWithRole(ctx context.Context, role portal.Role) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE role = ?`, string(role)).Scan(&n)
	return n, err
}

// SetPasswordHash replaces a user's password hash and ends their sessions.
func (db *DB) SetPasswordHash(ctx context.Context, userID int64, hash string) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
		return err
	})
}

// SetUserLang remembers a user's language (emails are rendered in it).
func (db *DB) SetUserLang(ctx context.Context, userID int64, lang string) error {
	_, err := db.ExecContext(ctx, `UPDATE users SET lang = ? WHERE id = ?`, lang, userID)
	return err
}

// Session is a server-side session record.
type Session struct {
	UserID     int64
	CreatedAt  time.Time
	LastSeenAt time.Time
}

// CreateSession stores a new session under the hash of its id.
func (db *DB) CreateSession(ctx context.Context, idHash string, userID int64, ip string) error {
	now := fmtTime(db.now())
	_, err := db.ExecContext(ctx, `INSERT INTO sessions(id_hash, user_id, created_at, last_seen_at, ip) VALUES (?, ?, ?, ?, ?)`,
		idHash, userID, now, now, ip)
	return err
}

// GetSession loads a session by the hash of its id.
func (db *DB) GetSession(ctx context.Context, idHash string) (Session, error) {
	var s Session
	var c, l string
	err := db.QueryRowContext(ctx, `SELECT user_id, created_at, last_seen_at FROM sessions WHERE id_hash = ?`, idHash).Scan(&s.UserID, &c, &l)
	if err != nil {
		return s, notFound(err, "session")
	}
	s.CreatedAt, s.LastSeenAt = parseTime(c), parseTime(l)
	return s, nil
}

// TouchSession records activity on a session.
func (db *DB) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	_, err := db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?`, fmtTime(at), idHash)
	return err
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	_, err := db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
	return err
}

// CreateSetupToken stores a one-time token hash for a purpose.
func (db *DB) CreateSetupToken(ctx context.Context, hash, purpose string, expires time.Time) error {
	_, err := db.ExecContext(ctx, `INSERT INTO setup_tokens(token_hash, purpose, expires_at) VALUES (?, ?, ?)`, hash, purpose, fmtTime(expires))
	return err
}

// SetupTokenState tells whether a token hash is usable now: "ok",
// "expired", "used" or "unknown".
func (db *DB) SetupTokenState(ctx context.Context, hash, purpose string) (string, error) {
	var exp string
	var used sql.NullString
	err := db.QueryRowContext(ctx, `SELECT expires_at, used_at FROM setup_tokens WHERE token_hash = ? AND purpose = ?`, hash, purpose).Scan(&exp, &used)
	if err == sql.ErrNoRows {
		return "unknown", nil
	}
	if err != nil {
		return "", err
	}
	if used.Valid {
		return "used", nil
	}
	if !db.now().Before(parseTime(exp)) {
		return "expired", nil
	}
	return "ok", nil
}

// UseSetupToken spends a token inside tx; it fails unless the token is
// unused and unexpired (so two racing requests cannot both use it).
func (db *DB) UseSetupToken(ctx context.Context, tx *sql.Tx, hash, purpose string) error {
	now := fmtTime(db.now())
	res, err := tx.ExecContext(ctx, `UPDATE setup_tokens SET used_at = ? WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?`,
		now, hash, purpose, now)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return &portal.Error{Code: portal.EConflict, Key: "setup.link_invalid", Message: "This link has been used or has expired."}
	}
	return nil
}

// CreateUserTx inserts a user inside tx.
func (db *DB) CreateUserTx(ctx context.Context, tx *sql.Tx, u portal.User) (portal.User, error) {
	u.CreatedAt = db.now()
	u.Email = strings.ToLower(u.Email)
	var acct any
	if u.AccountID != 0 {
		acct = u.AccountID
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO users(account_id, email, name, role, lang, password_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, acct, u.Email, u.Name, string(u.Role), u.Lang, u.PasswordHash, fmtTime(u.CreatedAt))
	if isUnique(err) {
		return u, &portal.Error{Code: portal.EConflict, Field: "email", Key: "user.email_taken", Message: "A user with this email address already exists."}
	}
	if err != nil {
		return u, err
	}
	u.ID, _ = res.LastInsertId()
	return u, nil
}

// RecordSignInFailure notes a failed sign-in for rate limiting.
func (db *DB) RecordSignInFailure(ctx context.Context, email, ip string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO signin_failures(email, ip, at) VALUES (?, ?, ?)`, strings.ToLower(email), ip, fmtTime(db.now()))
	return err
}

// SignInFailures counts failures since a time for an email and for an IP.
func (db *DB) SignInFailures(ctx context.Context, email, ip string, since time.Time) (byEmail, byIP int, err error) {
	s := fmtTime(since)
	if err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM signin_failures WHERE email = ? AND at > ?`, strings.ToLower(email), s).Scan(&byEmail); err != nil {
		return
	}
	err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM signin_failures WHERE ip = ? AND at > ?`, ip, s).Scan(&byIP)
	return
}

// ClearSignInFailures forgets an email's failures after a good sign-in.
func (db *DB) ClearSignInFailures(ctx context.Context, email string) error {
	_, err := db.ExecContext(ctx, `DELETE FROM signin_failures WHERE email = ?`, strings.ToLower(email))
	return err
}
