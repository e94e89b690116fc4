package store

import (
	"context"
	"time"
)

// SaveDraft stores a form draft for a user under a random token.
func (db *DB) SaveDraft(ctx context.Context, userID int64, token, body string) error {
	// drafts are short-lived: drop a user's drafts older than a day
	cutoff := fmtTime(db.now().Add(-24 * time.Hour))
	if _, err := db.ExecContext(ctx, `DELETE FROM order_drafts WHERE user_id = ? AND created_at < ?`, userID, cutoff); err != nil {
		return err
	}
	_, err := db.ExecContext(ctx, `INSERT INTO order_drafts(user_id, token, body, created_at) VALUES (?, ?, ?, ?)`, userID, token, body, fmtTime(db.now()))
	return err
}

// Draft loads a user's draft; another user's token is not found.
func (db *DB) Draft(ctx context.Context, userID int64, token string) (string, error) {
	var body string
	err := db.QueryRowContext(ctx, `SELECT body FROM order_drafts WHERE user_id = ? AND token = ?`, userID, token).Scan(&body)
	return body, notFound(err, "draft")
}
