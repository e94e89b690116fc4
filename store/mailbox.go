package store

import (
	"context"
	"database/sql"
	"time"

	"certdesk/internal/portal"
	"certdesk/internal/validation"
)

// Mailbox confirmation links (SBR 3.2.2.2) for the validation service.

const mailboxCols = `id, account_id, COALESCE(order_id,0), email, token_hash, lang, created_at, expires_at, used_at, killed_at, validated_at`

func scanMailbox(row interface{ Scan(...any) error }) (validation.MailboxToken, error) {
	var t validation.MailboxToken
	var created, expires string
	var used, killed, validated sql.NullString
	err := row.Scan(&t.ID, &t.AccountID, &t.OrderID, &t.Email, &t.Hash, &t.Lang, &created, &expires, &used, &killed, &validated)
	if err != nil {
		return t, err
	}
	t.CreatedAt, t.ExpiresAt = parseTime(created), parseTime(expires)
	t.UsedAt, t.KilledAt, t.ValidatedAt = parseNullTime(used), parseNullTime(killed), parseNullTime(validated)
	return t, nil
}

// InsertMailboxToken stores a new link's hash, sets its ID and voids the
// account's earlier unused links for the same address (re-sending kills
// the old value).
func (db *DB) InsertMailboxToken(ctx context.Context, q portal.Querier, t *validation.MailboxToken) error {
	q = db.q(q)
	if _, err := q.ExecContext(ctx, `UPDATE mailbox_validations SET killed_at=? WHERE account_id=? AND email=? AND used_at IS NULL
		AND killed_at IS NULL`, fmtTime(t.CreatedAt), t.AccountID, t.Email); err != nil {
		return err
	}
	res, err := q.ExecContext(ctx, `INSERT INTO mailbox_validations(account_id, email, token_hash, order_id, lang, created_at, expires_at)
		VALUES (?,?,?,?,?,?,?)`, t.AccountID, t.Email, t.Hash, nullInt(t.OrderID), langOr(t.Lang), fmtTime(t.CreatedAt), fmtTime(t.ExpiresAt))
	if err != nil {
		return err
	}
	t.ID, err = res.LastInsertId()
	return err
}

// MailboxTokenByHash finds a link by its hash.
func (db *DB) MailboxTokenByHash(ctx context.Context, q portal.Querier, hash string) (validation.MailboxToken, error) {
	t, err := scanMailbox(db.q(q).QueryRowContext(ctx, `SELECT `+mailboxCols+` FROM mailbox_validations WHERE token_hash = ?`, hash))
	return t, notFound(err, "link")
}

// LatestMailboxToken returns the account's newest link for an address.
func (db *DB) LatestMailboxToken(ctx context.Context, q portal.Querier, accountID int64, email string) (validation.MailboxToken, error) {
	t, err := scanMailbox(db.q(q).QueryRowContext(ctx, `SELECT `+mailboxCols+` FROM mailbox_validations WHERE account_id = ? AND email = ?
		ORDER BY id DESC LIMIT 1`, accountID, email))
	return t, notFound(err, "mailbox")
}

// UseMailboxToken marks a link used and the mailbox validated at at; a
// second use is a conflict.
func (db *DB) UseMailboxToken(ctx context.Context, q portal.Querier, id int64, at time.Time) error {
	res, err := db.q(q).ExecContext(ctx, `UPDATE mailbox_validations SET used_at=?, validated_at=? WHERE id=? AND used_at IS NULL
		AND killed_at IS NULL`, fmtTime(at), fmtTime(at), id)
	if err := mustAffect(res, err, "link"); portal.ErrorCode(err) == portal.ENotFound {
		return validation.ErrLinkUsed
	} else if err != nil {
		return err
	}
	return nil
}

// LastMailboxValidation returns when the account last validated the
// address (zero when never).
func (db *DB) LastMailboxValidation(ctx context.Context, q portal.Querier, accountID int64, email string) (time.Time, error) {
	var at sql.NullString
	err := db.q(q).QueryRowContext(ctx, `SELECT MAX(validated_at) FROM mailbox_validations WHERE account_id = ? AND email = ?`,
		accountID, email).Scan(&at)
	if err != nil {
		return time.Time{}, err
	}
	return parseNullTime(at), nil
}
