package store

import (
	"context"
	"strings"
)

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

// RecipientStatuses reads the status of several recipients in one query.
func (db *DB) RecipientStatuses(ctx context.Context, ids []int64) (map[int64]string, error) {
	out := map[int64]string{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := db.QueryContext(ctx, `SELECT id, status FROM recipients WHERE id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		out[id] = st
	}
	return out, rows.Err()
}
