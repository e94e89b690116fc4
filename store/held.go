package store

import "context"

// ReleaseHeld puts a held recipient back to ready after CA staff reviewed
// it; ok is false when the recipient is not held (already released).
func (db *DB) ReleaseHeld(ctx context.Context, recipientID int64) (bool, error) {
	res, err := db.ExecContext(ctx, `UPDATE recipients SET status = 'ready', held_reason = '' WHERE id = ? AND status = 'held'`, recipientID)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
