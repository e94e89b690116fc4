package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"certdesk/internal/ordering"
	"certdesk/internal/portal"
)

// Renewals: multi-year plans and auto-renew (migration 0035;
// internal/ordering Renewals). Every write here is a conditional UPDATE,
// so two sweeps racing for the same recipient or order change it once.

var _ ordering.RenewalStore = (*DB)(nil)

// PlansDue implements ordering.RenewalStore: issued recipients whose
// current certificate (issued, not revoked, of the recipient's current
// plan period) ends at or before until, in orders that are not cancelled
// and whose period ends after now and after that certificate.
func (db *DB) PlansDue(ctx context.Context, now, until time.Time) ([]ordering.PlanDue, error) {
	rows, err := db.QueryContext(ctx, `SELECT r.id, r.order_id, r.plan_period, c.not_after, o.period_end,
		EXISTS (SELECT 1 FROM keygen_links k WHERE k.recipient_id = r.id AND k.certificate_id = c.id)
		FROM orders o
		JOIN recipients r ON r.order_id = o.id
		JOIN certificates c ON c.id = r.certificate_id
		WHERE o.period_end > ? AND o.status <> 'cancelled'
		AND r.status = 'issued' AND c.status = 'issued' AND c.plan_period = r.plan_period
		AND c.not_after <= ? AND o.period_end > c.not_after
		ORDER BY r.id`, fmtTime(now), fmtTime(until))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ordering.PlanDue
	for rows.Next() {
		var d ordering.PlanDue
		var na, pe string
		if err := rows.Scan(&d.RecipientID, &d.OrderID, &d.PlanPeriod, &na, &pe, &d.KeyGen); err != nil {
			return nil, err
		}
		d.CertNotAfter, d.PeriodEnd = parseTime(na), parseTime(pe)
		out = append(out, d)
	}
	return out, rows.Err()
}

// StartPlanPeriod implements ordering.RenewalStore: the recipient moves
// from plan period from to from+1, awaiting key generation (the caller
// computes the real next status in the same transaction), its CSR kept
// only when keepCSR; the current certificate stays its certificate_id
// until the next one is issued. Its order is pending again. False when
// the recipient is not issued in period from any more, or no longer due:
// its current certificate was revoked or its order cancelled since
// PlansDue listed it (a sweep reads the list once and may issue for a
// while before it reaches a recipient).
func (db *DB) StartPlanPeriod(ctx context.Context, tx *sql.Tx, recipientID int64, from int, keepCSR bool) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE recipients SET plan_period = plan_period + 1, status = 'awaiting_key_generation',
		held_reason = '', csr_pem = CASE WHEN ? THEN csr_pem ELSE '' END
		WHERE id = ? AND plan_period = ? AND status = 'issued'
		AND certificate_id IN (SELECT id FROM certificates WHERE status = 'issued')
		AND order_id IN (SELECT id FROM orders WHERE status <> 'cancelled')`, keepCSR, recipientID, from)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	_, err = tx.ExecContext(ctx, `UPDATE orders SET status = 'pending' WHERE status = 'completed'
		AND id = (SELECT order_id FROM recipients WHERE id = ?)`, recipientID)
	return err == nil, err
}

// AutoRenewDue implements ordering.RenewalStore. An order is renewed for
// its recipients whose current certificate is issued (RenewalRecipients),
// so it is due only when it has one: an older certificate of a recipient
// whose current one was revoked does not count.
func (db *DB) AutoRenewDue(ctx context.Context, after, until, retryBefore time.Time) ([]portal.Order, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+orderCols+` FROM orders
		WHERE period_end > ? AND period_end <= ? AND auto_renew = 1 AND status <> 'cancelled'
		AND renewal_order_id IS NULL AND (renewal_attempted_at IS NULL OR renewal_attempted_at <= ?)
		AND EXISTS (SELECT 1 FROM recipients r JOIN certificates c ON c.id = r.certificate_id
			WHERE r.order_id = orders.id AND c.status = 'issued')
		ORDER BY id`, fmtTime(after), fmtTime(until), fmtTime(retryBefore))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []portal.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// RenewalRecipients implements ordering.RenewalStore: the order's
// recipients whose current certificate is issued (not revoked), in order.
func (db *DB) RenewalRecipients(ctx context.Context, q Querier, orderID int64) ([]portal.Recipient, error) {
	if q == nil {
		q = db.DB
	}
	return db.recipients(ctx, q, `order_id = ? AND certificate_id IN (SELECT id FROM certificates
		WHERE order_id = ? AND status = 'issued') ORDER BY id`, orderID, orderID)
}

// OrderIDByIdempotencyKey implements ordering.RenewalStore.
func (db *DB) OrderIDByIdempotencyKey(ctx context.Context, q Querier, accountID int64, key string) (int64, error) {
	if q == nil {
		q = db.DB
	}
	var id int64
	err := q.QueryRowContext(ctx, `SELECT id FROM orders WHERE account_id = ? AND idempotency_key = ?`, accountID, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// LinkRenewal implements ordering.RenewalStore: orderID's renewal order
// becomes renewalID (once); the renewal order records where it came from
// and the agreement accepted with auto-renew.
func (db *DB) LinkRenewal(ctx context.Context, tx *sql.Tx, orderID, renewalID int64, agreementVersion string, agreedAt time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE orders SET renewal_order_id = ?, renewal_failure = ''
		WHERE id = ? AND renewal_order_id IS NULL`, renewalID, orderID)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, nil
	}
	res, err = tx.ExecContext(ctx, `UPDATE orders SET renewed_from = ?, agreement_version = ?, agreed_at = ?
		WHERE id = ? AND account_id = (SELECT account_id FROM orders WHERE id = ?)`,
		orderID, agreementVersion, fmtTime(agreedAt), renewalID, orderID)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return false, portal.Errorf(portal.EInternal, "renewal order %d of order %d not found in the account", renewalID, orderID)
	}
	return true, nil
}

// RenewalRefused implements ordering.RenewalStore.
func (db *DB) RenewalRefused(ctx context.Context, tx *sql.Tx, orderID int64, reason string, at, retryBefore time.Time) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `UPDATE orders SET renewal_failure = ?, renewal_attempted_at = ?, renewal_failures = renewal_failures + 1
		WHERE id = ? AND renewal_order_id IS NULL AND (renewal_attempted_at IS NULL OR renewal_attempted_at <= ?)
		RETURNING renewal_failures`, reason, fmtTime(at), orderID, fmtTime(retryBefore)).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// RenewalState is what the order page may show about auto-renew.
type RenewalState struct {
	RenewalOrderID int64
	Failure        string // the last refusal in English, "" when none or renewed
	AttemptedAt    time.Time
	Failures       int
	recorded       string // renewal_failure as stored (ordering.EncodeRenewalFailure)
}

// FailureIn is the last refusal in lang (the order page's language).
func (s RenewalState) FailureIn(lang string) string {
	return ordering.RenewalFailureIn(s.recorded, lang)
}

// RenewalStateOf reads an account's order's auto-renew state.
func (db *DB) RenewalStateOf(ctx context.Context, accountID, orderID int64) (RenewalState, error) {
	var s RenewalState
	var at sql.NullString
	err := db.QueryRowContext(ctx, `SELECT COALESCE(renewal_order_id,0), renewal_failure, renewal_attempted_at, renewal_failures
		FROM orders WHERE id = ? AND account_id = ?`, orderID, accountID).Scan(&s.RenewalOrderID, &s.recorded, &at, &s.Failures)
	s.AttemptedAt = parseNullTime(at)
	s.Failure = ordering.RenewalFailureIn(s.recorded, "en")
	return s, notFound(err, "order")
}

// CloseOpenPeriod cancels the plan period a recipient has open beyond
// certificate certID's, when certID is its current certificate and that
// period has no certificate yet (the next period starts 30 days before the
// current certificate ends): its KeyGen link is then refused (closed) and
// nothing more is issued for it. The order completes when nothing else is
// open. It reports whether a period was closed.
func (db *DB) CloseOpenPeriod(ctx context.Context, tx *sql.Tx, certID int64) (bool, error) {
	var orderID int64
	err := tx.QueryRowContext(ctx, `UPDATE recipients SET status = 'cancelled', held_reason = ''
		WHERE certificate_id = ? AND status NOT IN ('issued', 'cancelled')
		AND plan_period > (SELECT plan_period FROM certificates WHERE id = ?) RETURNING order_id`, certID, certID).Scan(&orderID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, db.CompleteOrderIfDone(ctx, tx, orderID)
}
