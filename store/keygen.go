package store

import (
	"context"
	"database/sql"
	"time"

	"certdesk/internal/ordering"
)

// KeyGen links (migration 0040; internal/ordering LinkService). Only the
// token's SHA-256 is stored.

const keygenCols = `id, recipient_id, account_id, token_hash, created_at, expires_at, replaced_at, spent_at,
	COALESCE(certificate_id, 0), sent_by`

func scanKeyGenLink(row interface{ Scan(...any) error }) (ordering.KeyGenLink, error) {
	var l ordering.KeyGenLink
	var created, expires string
	var replaced, spent sql.NullString
	err := row.Scan(&l.ID, &l.RecipientID, &l.AccountID, &l.TokenHash, &created, &expires, &replaced, &spent,
		&l.CertificateID, &l.SentBy)
	if err != nil {
		return l, notFound(err, "KeyGen link")
	}
	l.CreatedAt, l.ExpiresAt = parseTime(created), parseTime(expires)
	l.ReplacedAt, l.SpentAt = parseNullTime(replaced), parseNullTime(spent)
	return l, nil
}

// InsertKeyGenLink stores a new link inside tx and marks every other
// unspent, unreplaced link of the same recipient replaced (a new link
// kills the old one).
func (db *DB) InsertKeyGenLink(ctx context.Context, tx *sql.Tx, l *ordering.KeyGenLink) error {
	if l.CreatedAt.IsZero() {
		l.CreatedAt = db.now()
	}
	if _, err := tx.ExecContext(ctx, `UPDATE keygen_links SET replaced_at = ?
		WHERE recipient_id = ? AND replaced_at IS NULL AND spent_at IS NULL`, fmtTime(l.CreatedAt), l.RecipientID); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO keygen_links(recipient_id, account_id, token_hash, created_at, expires_at, sent_by)
		VALUES (?, ?, ?, ?, ?, ?)`, l.RecipientID, l.AccountID, l.TokenHash, fmtTime(l.CreatedAt), fmtTime(l.ExpiresAt), l.SentBy)
	if err != nil {
		return err
	}
	l.ID, err = res.LastInsertId()
	return err
}

// KeyGenLinkByHash finds a link by its token's hash (not found otherwise).
func (db *DB) KeyGenLinkByHash(ctx context.Context, q Querier, hash string) (ordering.KeyGenLink, error) {
	if q == nil {
		q = db.DB
	}
	return scanKeyGenLink(q.QueryRowContext(ctx, `SELECT `+keygenCols+` FROM keygen_links WHERE token_hash = ?`, hash))
}

// LatestKeyGenLink is the newest link of a recipient (not found when none).
func (db *DB) LatestKeyGenLink(ctx context.Context, q Querier, recipientID int64) (ordering.KeyGenLink, error) {
	if q == nil {
		q = db.DB
	}
	return scanKeyGenLink(q.QueryRowContext(ctx, `SELECT `+keygenCols+` FROM keygen_links WHERE recipient_id = ?
		ORDER BY id DESC LIMIT 1`, recipientID))
}

// SpendKeyGenLink records that a certificate was issued through a link;
// false when the link was already spent.
func (db *DB) SpendKeyGenLink(ctx context.Context, q Querier, id, certificateID int64, at time.Time) (bool, error) {
	if q == nil {
		q = db.DB
	}
	res, err := q.ExecContext(ctx, `UPDATE keygen_links SET spent_at = ?, certificate_id = ? WHERE id = ? AND spent_at IS NULL`,
		fmtTime(at), nullInt(certificateID), id)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ExpireKeyGenLinksOf sets the expiry of a recipient's links to at (used
// by tests and by operators to end a link early).
func (db *DB) ExpireKeyGenLinksOf(ctx context.Context, recipientID int64, at time.Time) error {
	_, err := db.ExecContext(ctx, `UPDATE keygen_links SET expires_at = ? WHERE recipient_id = ?`, fmtTime(at), recipientID)
	return err
}

var _ ordering.KeyGenStore = (*DB)(nil)
