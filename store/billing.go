package store

import (
	"context"
	"database/sql"

	"certdesk/internal/billing"
	"certdesk/internal/portal"
)

// store.DB is billing's store.
var _ billing.Store = (*DB)(nil)

// q returns the caller's transaction, or the database when there is none.
func (db *DB) billingQ(q billing.Querier) billing.Querier {
	if q == nil {
		return db.DB
	}
	return q
}

// BillingContract returns an account's contract with its prices.
func (db *DB) BillingContract(ctx context.Context, q billing.Querier, accountID int64) (billing.Contract, error) {
	q = db.billingQ(q)
	c := billing.Contract{AccountID: accountID, Prices: map[portal.ProductID]int64{}}
	var active int
	var created string
	err := q.QueryRowContext(ctx, `SELECT reference, active, limit_cents, created_at FROM billing_contracts WHERE account_id = ?`,
		accountID).Scan(&c.Reference, &active, &c.LimitCents, &created)
	if err != nil {
		return c, notFound(err, "contract")
	}
	c.Active, c.CreatedAt = active != 0, parseTime(created)
	rows, err := q.QueryContext(ctx, `SELECT product_id, price_cents FROM billing_contract_prices WHERE account_id = ?`, accountID)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var p int64
		if err := rows.Scan(&id, &p); err != nil {
			return c, err
		}
		c.Prices[portal.ProductID(id)] = p
	}
	return c, rows.Err()
}

// SetBillingContract creates or replaces an account's contract and its
// price list (in one transaction).
func (db *DB) SetBillingContract(ctx context.Context, c billing.Contract) error {
	now := fmtTime(db.now())
	return db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO billing_contracts(account_id, reference, active, limit_cents, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT(account_id) DO UPDATE SET reference = excluded.reference, active = excluded.active,
				limit_cents = excluded.limit_cents, updated_at = excluded.updated_at`,
			c.AccountID, c.Reference, boolInt(c.Active), c.LimitCents, now, now)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM billing_contract_prices WHERE account_id = ?`, c.AccountID); err != nil {
			return err
		}
		for id, p := range c.Prices {
			if _, err := tx.ExecContext(ctx, `INSERT INTO billing_contract_prices(account_id, product_id, price_cents) VALUES (?, ?, ?)`,
				c.AccountID, string(id), p); err != nil {
				return err
			}
		}
		return nil
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CardOnFile returns an account's card on file.
func (db *DB) CardOnFile(ctx context.Context, q billing.Querier, accountID int64) (billing.StoredCard, error) {
	c := billing.StoredCard{AccountID: accountID}
	var created string
	err := db.billingQ(q).QueryRowContext(ctx, `SELECT brand, last4, exp_month, exp_year, gateway_ref, created_at FROM billing_cards WHERE account_id = ?`,
		accountID).Scan(&c.Brand, &c.Last4, &c.ExpMonth, &c.ExpYear, &c.GatewayRef, &created)
	if err != nil {
		return c, notFound(err, "card on file")
	}
	c.CreatedAt = parseTime(created)
	return c, nil
}

// SaveCardOnFile creates or replaces an account's card on file.
func (db *DB) SaveCardOnFile(ctx context.Context, q billing.Querier, c billing.StoredCard) error {
	created := c.CreatedAt
	if created.IsZero() {
		created = db.now()
	}
	_, err := db.billingQ(q).ExecContext(ctx, `INSERT INTO billing_cards(account_id, brand, last4, exp_month, exp_year, gateway_ref, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(account_id) DO UPDATE SET brand = excluded.brand, last4 = excluded.last4, exp_month = excluded.exp_month,
			exp_year = excluded.exp_year, gateway_ref = excluded.gateway_ref, created_at = excluded.created_at`,
		c.AccountID, c.Brand, c.Last4, c.ExpMonth, c.ExpYear, c.GatewayRef, fmtTime(created))
	return err
}

// AddLedgerEntry appends a ledger row. A row for an order is written only
// when the order belongs to the account (ENotFound otherwise), so one
// account can never book against another's order.
func (db *DB) AddLedgerEntry(ctx context.Context, q billing.Querier, e billing.LedgerEntry) (int64, error) {
	at := e.CreatedAt
	if at.IsZero() {
		at = db.now()
	}
	res, err := db.billingQ(q).ExecContext(ctx, `INSERT INTO billing_ledger(account_id, order_id, kind, method, amount_cents, gateway_ref, detail, created_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?
		WHERE ? = 0 OR EXISTS (SELECT 1 FROM orders WHERE id = ? AND account_id = ?)`,
		e.AccountID, nullInt(e.OrderID), string(e.Kind), string(e.Method), e.AmountCents, e.GatewayRef, e.Detail, fmtTime(at),
		e.OrderID, e.OrderID, e.AccountID)
	if err != nil {
		return 0, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return 0, portal.Errorf(portal.ENotFound, "order not found")
	}
	return res.LastInsertId()
}

const ledgerCols = `id, account_id, COALESCE(order_id, 0), kind, method, amount_cents, gateway_ref, detail, created_at`

func scanLedger(rows *sql.Rows) ([]billing.LedgerEntry, error) {
	defer rows.Close()
	var out []billing.LedgerEntry
	for rows.Next() {
		var e billing.LedgerEntry
		var kind, method, created string
		if err := rows.Scan(&e.ID, &e.AccountID, &e.OrderID, &kind, &method, &e.AmountCents, &e.GatewayRef, &e.Detail, &created); err != nil {
			return nil, err
		}
		e.Kind, e.Method, e.CreatedAt = billing.Kind(kind), portal.PaymentMethod(method), parseTime(created)
		out = append(out, e)
	}
	return out, rows.Err()
}

// OrderLedger lists an order's ledger rows, oldest first, scoped to the account.
func (db *DB) OrderLedger(ctx context.Context, q billing.Querier, accountID, orderID int64) ([]billing.LedgerEntry, error) {
	rows, err := db.billingQ(q).QueryContext(ctx, `SELECT `+ledgerCols+` FROM billing_ledger WHERE account_id = ? AND order_id = ? ORDER BY id`,
		accountID, orderID)
	if err != nil {
		return nil, err
	}
	return scanLedger(rows)
}

// LedgerSums is an account's ledger summed by method and kind, read from
// the running totals the ledger's insert trigger keeps (migration 0045).
func (db *DB) LedgerSums(ctx context.Context, q billing.Querier, accountID int64) (map[billing.SumKey]int64, error) {
	rows, err := db.billingQ(q).QueryContext(ctx, `SELECT method, kind, amount_cents FROM billing_ledger_totals WHERE account_id = ?`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[billing.SumKey]int64{}
	for rows.Next() {
		var m, k string
		var sum int64
		if err := rows.Scan(&m, &k, &sum); err != nil {
			return nil, err
		}
		out[billing.SumKey{Method: portal.PaymentMethod(m), Kind: billing.Kind(k)}] = sum
	}
	return out, rows.Err()
}

// LedgerPage lists an account's ledger, newest first.
func (db *DB) LedgerPage(ctx context.Context, accountID int64, limit int) ([]billing.LedgerEntry, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+ledgerCols+` FROM billing_ledger WHERE account_id = ? ORDER BY id DESC LIMIT ?`, accountID, limit)
	if err != nil {
		return nil, err
	}
	return scanLedger(rows)
}
