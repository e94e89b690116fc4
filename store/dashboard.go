package store

import "context"

// AccountCounts are the dashboard's figures for a customer account.
type AccountCounts struct {
	PendingOrders, IssuedCerts, ValidOrgs, PendingOrgs, ValidDomains, PendingDomains int
}

// CountsForAccount reads the dashboard figures in one query.
func (db *DB) CountsForAccount(ctx context.Context, accountID int64) (AccountCounts, error) {
	var c AccountCounts
	now := fmtTime(db.now())
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM orders WHERE account_id = ?1 AND status = 'pending'),
		(SELECT COUNT(*) FROM certificates WHERE account_id = ?1 AND status = 'issued'),
		(SELECT COUNT(*) FROM organizations WHERE account_id = ?1 AND status = 'validated' AND expires_at > ?2),
		(SELECT COUNT(*) FROM organizations WHERE account_id = ?1 AND status = 'pending'),
		(SELECT COUNT(*) FROM domains WHERE account_id = ?1 AND status = 'validated' AND expires_at > ?2),
		(SELECT COUNT(*) FROM domains WHERE account_id = ?1 AND status = 'pending')`, accountID, now).
		Scan(&c.PendingOrders, &c.IssuedCerts, &c.ValidOrgs, &c.PendingOrgs, &c.ValidDomains, &c.PendingDomains)
	return c, err
}

// PendingOrgCount counts organizations waiting in the validation queue.
func (db *DB) PendingOrgCount(ctx context.Context) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM organizations WHERE status = 'pending'`).Scan(&n)
	return n, err
}
