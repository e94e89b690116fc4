package store

import (
	"context"
	"database/sql"
	"strings"

	"certdesk/internal/portal"
)

// Querier is satisfied by *sql.DB and *sql.Tx.
type Querier = portal.Querier

// InsertOrder writes an order and its recipients inside tx. An
// idempotency key already used by the account returns the earlier order's
// id with a conflict error carrying it, so a double submit makes one order.
func (db *DB) InsertOrder(ctx context.Context, tx *sql.Tx, o *portal.Order, idemKey string) error {
	var key any
	if idemKey != "" {
		key = idemKey
		var prev int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM orders WHERE account_id = ? AND idempotency_key = ?`, o.AccountID, idemKey).Scan(&prev)
		if err == nil {
			o.ID = prev
			return &portal.Error{Code: portal.EConflict, Key: "order.duplicate", Message: "This order was already submitted.", Data: map[string]any{"OrderID": prev}}
		}
		if err != sql.ErrNoRows {
			return err
		}
	}
	now := db.now()
	o.CreatedAt = now
	if o.Status == "" {
		o.Status = portal.OrderPending
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO orders(account_id, user_id, product_id, organization_id, signature_hash,
		period_start, period_end, auto_renew, payment_method, payment_ref, amount_cents, additional_emails,
		agreement_version, agreed_at, status, idempotency_key, renewed_from, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		o.AccountID, o.UserID, string(o.Product), nullInt(o.OrganizationID), string(o.SignatureHash),
		fmtTime(o.PeriodStart), fmtTime(o.PeriodEnd), o.AutoRenew, string(o.PaymentMethod), o.PaymentRef, o.AmountCents,
		strings.Join(o.AdditionalEmails, ","), o.AgreementVersion, fmtTime(o.AgreedAt), string(o.Status), key,
		nullInt(o.RenewedFrom), fmtTime(now))
	if err != nil {
		return err
	}
	o.ID, _ = res.LastInsertId()
	for i := range o.Recipients {
		r := &o.Recipients[i]
		r.OrderID, r.AccountID = o.ID, o.AccountID
		if r.PlanPeriod == 0 {
			r.PlanPeriod = 1
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO recipients(order_id, account_id, position, email, common_name, cn_from_name, csr_pem, status, plan_period)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, o.ID, o.AccountID, i, r.Email, r.CommonName, r.CNFromName, r.CSR, string(r.Status), r.PlanPeriod)
		if err != nil {
			return err
		}
		r.ID, _ = res.LastInsertId()
	}
	return nil
}

// SetOrderPaymentRef stores the payment reference after authorization.
func (db *DB) SetOrderPaymentRef(ctx context.Context, tx *sql.Tx, orderID int64, ref string) error {
	_, err := tx.ExecContext(ctx, `UPDATE orders SET payment_ref = ? WHERE id = ?`, ref, orderID)
	return err
}

const orderCols = `id, account_id, user_id, product_id, COALESCE(organization_id,0), signature_hash, period_start, period_end,
	auto_renew, payment_method, payment_ref, amount_cents, additional_emails, agreement_version, agreed_at, status,
	COALESCE(renewed_from,0), created_at, cancelled_at`

func scanOrder(row interface{ Scan(...any) error }) (portal.Order, error) {
	var o portal.Order
	var product, hash, ps, pe, pm, add, agreed, status, created string
	var cancelled sql.NullString
	err := row.Scan(&o.ID, &o.AccountID, &o.UserID, &product, &o.OrganizationID, &hash, &ps, &pe, &o.AutoRenew, &pm,
		&o.PaymentRef, &o.AmountCents, &add, &o.AgreementVersion, &agreed, &status, &o.RenewedFrom, &created, &cancelled)
	if err != nil {
		return o, err
	}
	o.Product, o.SignatureHash, o.PaymentMethod, o.Status = portal.ProductID(product), portal.SignatureHash(hash), portal.PaymentMethod(pm), portal.OrderStatus(status)
	o.PeriodStart, o.PeriodEnd, o.AgreedAt, o.CreatedAt = parseTime(ps), parseTime(pe), parseTime(agreed), parseTime(created)
	o.CancelledAt = parseNullTime(cancelled)
	if add != "" {
		o.AdditionalEmails = strings.Split(add, ",")
	}
	return o, nil
}

const recipientCols = `id, order_id, account_id, email, common_name, cn_from_name, csr_pem, status, held_reason,
	COALESCE(certificate_id,0), plan_period, next_issue_after`

func scanRecipient(row interface{ Scan(...any) error }) (portal.Recipient, error) {
	var r portal.Recipient
	var status string
	var next sql.NullString
	err := row.Scan(&r.ID, &r.OrderID, &r.AccountID, &r.Email, &r.CommonName, &r.CNFromName, &r.CSR, &status, &r.HeldReason,
		&r.CertificateID, &r.PlanPeriod, &next)
	r.Status = portal.RecipientStatus(status)
	r.NextIssueAfter = parseNullTime(next)
	return r, err
}

// Order loads an order of an account with its recipients. Another
// account's order is not found.
func (db *DB) Order(ctx context.Context, q Querier, accountID, id int64) (portal.Order, error) {
	if q == nil {
		q = db.DB
	}
	o, err := scanOrder(q.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE id = ? AND account_id = ?`, id, accountID))
	if err != nil {
		return o, notFound(err, "order")
	}
	o.Recipients, err = db.recipients(ctx, q, `order_id = ? ORDER BY position`, id)
	return o, err
}

// OrderByID loads any order (for staff and background work).
func (db *DB) OrderByID(ctx context.Context, q Querier, id int64) (portal.Order, error) {
	if q == nil {
		q = db.DB
	}
	var acct int64
	if err := q.QueryRowContext(ctx, `SELECT account_id FROM orders WHERE id = ?`, id).Scan(&acct); err != nil {
		return portal.Order{}, notFound(err, "order")
	}
	return db.Order(ctx, q, acct, id)
}

// OrderHead loads any order without its recipients, and how many
// recipients it has. Issuance needs the order's terms and that count (the
// amount per recipient), not every recipient's row: with OrderByID each
// issuance in a 1,000-recipient order read 1,000 rows and their CSRs.
func (db *DB) OrderHead(ctx context.Context, q Querier, id int64) (portal.Order, int, error) {
	if q == nil {
		q = db.DB
	}
	var n int
	o, err := scanOrder(scanPlus{q.QueryRowContext(ctx, `SELECT `+orderCols+`,
		(SELECT COUNT(*) FROM recipients WHERE recipients.order_id = orders.id) FROM orders WHERE id = ?`, id), []any{&n}})
	if err != nil {
		return o, 0, notFound(err, "order")
	}
	return o, n, nil
}

// scanPlus scans a row whose last columns go to extra, after what the
// caller's Scan asks for.
type scanPlus struct {
	row   interface{ Scan(...any) error }
	extra []any
}

func (s scanPlus) Scan(dest ...any) error { return s.row.Scan(append(dest, s.extra...)...) }

func (db *DB) recipients(ctx context.Context, q Querier, where string, args ...any) ([]portal.Recipient, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+recipientCols+` FROM recipients WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []portal.Recipient
	for rows.Next() {
		r, err := scanRecipient(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Recipient loads one recipient by id (no account scope: callers check).
func (db *DB) Recipient(ctx context.Context, q Querier, id int64) (portal.Recipient, error) {
	if q == nil {
		q = db.DB
	}
	r, err := scanRecipient(q.QueryRowContext(ctx, `SELECT `+recipientCols+` FROM recipients WHERE id = ?`, id))
	return r, notFound(err, "recipient")
}

// OpenRecipients lists recipients of pending orders that wait for
// something, optionally only one account's (accountID 0 = all).
func (db *DB) OpenRecipients(ctx context.Context, q Querier, accountID int64) ([]portal.Recipient, error) {
	if q == nil {
		q = db.DB
	}
	where := `status NOT IN ('issued','cancelled','held') AND order_id IN (SELECT id FROM orders WHERE status = 'pending')`
	if accountID != 0 {
		return db.recipients(ctx, q, where+` AND account_id = ? ORDER BY id`, accountID)
	}
	return db.recipients(ctx, q, where+` ORDER BY id`)
}

// OpenRecipientsOfOrder lists one order's recipients that wait for something.
func (db *DB) OpenRecipientsOfOrder(ctx context.Context, q Querier, orderID int64) ([]portal.Recipient, error) {
	if q == nil {
		q = db.DB
	}
	return db.recipients(ctx, q, `order_id = ? AND status NOT IN ('issued','cancelled','held') ORDER BY position`, orderID)
}

// SetRecipientStatus updates a recipient's status (and held reason).
func (db *DB) SetRecipientStatus(ctx context.Context, q Querier, id int64, st portal.RecipientStatus, reason string) error {
	if q == nil {
		q = db.DB
	}
	_, err := q.ExecContext(ctx, `UPDATE recipients SET status = ?, held_reason = ? WHERE id = ?`, string(st), reason, id)
	return err
}

// OrderFilter narrows the orders list.
type OrderFilter struct {
	Status  string
	Product string
	Email   string // substring of a recipient's email
	Limit   int
	Offset  int
}

// ListOrders lists an account's orders, newest first, with recipients.
func (db *DB) ListOrders(ctx context.Context, accountID int64, f OrderFilter) ([]portal.Order, int, error) {
	where := []string{"account_id = ?"}
	args := []any{accountID}
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, f.Status)
	}
	if f.Product != "" {
		where = append(where, "product_id = ?")
		args = append(args, f.Product)
	}
	if f.Email != "" {
		where = append(where, "id IN (SELECT order_id FROM recipients WHERE account_id = ? AND email LIKE ? ESCAPE '\\')")
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(f.Email))
		args = append(args, accountID, "%"+esc+"%")
	}
	w := strings.Join(where, " AND ")
	var total int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM orders WHERE `+w, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	rows, err := db.QueryContext(ctx, `SELECT `+orderCols+` FROM orders WHERE `+w+` ORDER BY id DESC LIMIT ? OFFSET ?`, append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	var out []portal.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			rows.Close()
			return nil, 0, err
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, 0, err
	}
	rows.Close()
	if len(out) == 0 {
		return out, total, nil
	}
	// the page's recipients in one query, not one per order
	ids := make([]any, len(out))
	idx := make(map[int64]int, len(out))
	for i, o := range out {
		ids[i], idx[o.ID] = o.ID, i
	}
	rs, err := db.recipients(ctx, db.DB, `order_id IN (?`+strings.Repeat(",?", len(ids)-1)+`) ORDER BY order_id, position`, ids...)
	if err != nil {
		return nil, 0, err
	}
	for _, r := range rs {
		out[idx[r.OrderID]].Recipients = append(out[idx[r.OrderID]].Recipients, r)
	}
	return out, total, nil
}

// CancelOrder marks a pending order and its unissued recipients cancelled.
func (db *DB) CancelOrder(ctx context.Context, tx *sql.Tx, accountID, id int64) error {
	now := fmtTime(db.now())
	res, err := tx.ExecContext(ctx, `UPDATE orders SET status = 'cancelled', cancelled_at = ? WHERE id = ? AND account_id = ? AND status = 'pending'`, now, id, accountID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return &portal.Error{Code: portal.EConflict, Key: "order.cannot_cancel", Message: "This order can no longer be cancelled."}
	}
	_, err = tx.ExecContext(ctx, `UPDATE recipients SET status = 'cancelled' WHERE order_id = ? AND status NOT IN ('issued')`, id)
	return err
}

// CompleteOrderIfDone marks an order completed when every recipient is issued.
func (db *DB) CompleteOrderIfDone(ctx context.Context, q Querier, orderID int64) error {
	if q == nil {
		q = db.DB
	}
	_, err := q.ExecContext(ctx, `UPDATE orders SET status = 'completed' WHERE id = ? AND status = 'pending'
		AND NOT EXISTS (SELECT 1 FROM recipients WHERE order_id = ? AND status NOT IN ('issued', 'cancelled'))`, orderID, orderID)
	return err
}

// OrgsForAccount lists an account's organizations (read model for the
// order form; the validation feature owns writes).
func (db *DB) OrgsForAccount(ctx context.Context, q Querier, accountID int64) ([]portal.Organization, error) {
	if q == nil {
		q = db.DB
	}
	rows, err := q.QueryContext(ctx, `SELECT id, account_id, legal_name, assumed_name, country, registration, status, validated_at, expires_at, COALESCE(order_id,0)
		FROM organizations WHERE account_id = ? ORDER BY legal_name`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []portal.Organization
	for rows.Next() {
		var o portal.Organization
		var st string
		var va, ex sql.NullString
		if err := rows.Scan(&o.ID, &o.AccountID, &o.LegalName, &o.AssumedName, &o.Country, &o.Registration, &st, &va, &ex, &o.OrderID); err != nil {
			return nil, err
		}
		o.Status, o.ValidatedAt, o.ExpiresAt = portal.OrgStatus(st), parseNullTime(va), parseNullTime(ex)
		out = append(out, o)
	}
	return out, rows.Err()
}

// DomainsForOrg lists an organization's domains (read model).
func (db *DB) DomainsForOrg(ctx context.Context, q Querier, orgID int64) ([]portal.Domain, error) {
	if q == nil {
		q = db.DB
	}
	rows, err := q.QueryContext(ctx, `SELECT id, account_id, organization_id, name, method, status, validated_at, expires_at, COALESCE(order_id,0)
		FROM domains WHERE organization_id = ? ORDER BY name`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []portal.Domain
	for rows.Next() {
		var d portal.Domain
		var m, st string
		var va, ex sql.NullString
		if err := rows.Scan(&d.ID, &d.AccountID, &d.OrganizationID, &d.Name, &m, &st, &va, &ex, &d.OrderID); err != nil {
			return nil, err
		}
		d.Method, d.Status, d.ValidatedAt, d.ExpiresAt = portal.DCVMethod(m), portal.DomainStatus(st), parseNullTime(va), parseNullTime(ex)
		out = append(out, d)
	}
	return out, rows.Err()
}

// RecipientCertState is what the order page shows about a recipient's
// current certificate: its status and whether it was made through the
// recipient's latest KeyGen link.
type RecipientCertState struct {
	CertStatus string
	ViaKeyGen  bool
}

// RecipientCertStates reads, in one query, the current certificate state of
// every recipient of an account's order that has a certificate.
func (db *DB) RecipientCertStates(ctx context.Context, accountID, orderID int64) (map[int64]RecipientCertState, error) {
	rows, err := db.QueryContext(ctx, `SELECT r.id, c.status,
		COALESCE((SELECT k.certificate_id FROM keygen_links k WHERE k.recipient_id = r.id ORDER BY k.id DESC LIMIT 1), 0) = c.id
		FROM recipients r JOIN certificates c ON c.id = r.certificate_id
		WHERE r.order_id = ? AND r.account_id = ?`, orderID, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]RecipientCertState{}
	for rows.Next() {
		var id int64
		var st RecipientCertState
		if err := rows.Scan(&id, &st.CertStatus, &st.ViaKeyGen); err != nil {
			return nil, err
		}
		out[id] = st
	}
	return out, rows.Err()
}
