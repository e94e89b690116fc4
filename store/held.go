package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"certdesk/internal/portal"
)

// ReleaseHeld puts a held recipient back to ready after CA staff reviewed
// it, or back to key generation when it has no CSR (a KeyGen issuance that
// was held: the page dropped its key, WithdrawKeyGenCSR). status is the
// new one, "" when the recipient was not held (already released).
func (db *DB) ReleaseHeld(ctx context.Context, recipientID int64) (status portal.RecipientStatus, err error) {
	var st string
	err = db.QueryRowContext(ctx, `UPDATE recipients SET held_reason = '',
		status = CASE WHEN csr_pem = '' THEN 'awaiting_key_generation' ELSE 'ready' END
		WHERE id = ? AND status = 'held' RETURNING status`, recipientID).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return portal.RecipientStatus(st), err
}

// RequeueReady sends a ready recipient back to waiting (status: a
// validation it relies on lapsed before issuance, SBR 4.2.1); false when
// it is no longer ready (issued or changed meanwhile).
func (db *DB) RequeueReady(ctx context.Context, tx *sql.Tx, id int64, status portal.RecipientStatus) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE recipients SET status = ?, held_reason = '' WHERE id = ? AND status = 'ready'`, string(status), id)
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
