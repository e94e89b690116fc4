package store

import (
	"context"
	"database/sql"
)

// AuditEntry is one line of the audit log: who, what, when, from where.
type AuditEntry struct {
	ID         int64
	At         string
	ActorID    int64
	Actor      string
	IP         string
	Action     string
	ObjectType string
	ObjectID   int64
	AccountID  int64
	Detail     string
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Audit writes an audit entry; pass a *sql.Tx to record it with the change.
func (db *DB) Audit(ctx context.Context, ex execer, e AuditEntry) error {
	if ex == nil {
		ex = db.DB
	}
	_, err := ex.ExecContext(ctx, `INSERT INTO audit_log(at, actor_user_id, actor, ip, action, object_type, object_id, account_id, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, fmtTime(db.now()), nullInt(e.ActorID), e.Actor, e.IP, e.Action, e.ObjectType,
		nullInt(e.ObjectID), nullInt(e.AccountID), e.Detail)
	return err
}

// ListAudit returns the newest audit entries first.
func (db *DB) ListAudit(ctx context.Context, limit, offset int) ([]AuditEntry, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, at, COALESCE(actor_user_id,0), actor, ip, action, object_type, COALESCE(object_id,0), COALESCE(account_id,0), detail
		FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.ID, &e.At, &e.ActorID, &e.Actor, &e.IP, &e.Action, &e.ObjectType, &e.ObjectID, &e.AccountID, &e.Detail); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}
