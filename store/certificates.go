package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"certdesk/internal/portal"
)

// Certificates: the issuance records of the CA (migrations 0004, 0030).
//
// Life of a row (internal/ordering Pipeline):
//
//	BeginIssuance      'issuing'   serial recorded BEFORE the CA key signs
//	CompleteIssuance   'issued'    DER, subject, validity... with the recipient,
//	                               the payment and the emails, one transaction
//	FailIssuance       'failed'    nothing was signed (lint finding, bad request)
//	RevokeUnstored     'revoked'   signed or possibly signed, never delivered
//	                               (crash or a failed completion): the serial is
//	                               listed on the CRL and answered revoked by OCSP
//	RevokeCertificate  'revoked'   revoked by the requestor, an administrator or
//	                               the system (KeyGen re-issue: superseded);
//	                               keyCompromise also revokes every other live
//	                               certificate of the key (compromised.go)
//
// A partial unique index (certificates_live) allows one 'issuing' or
// 'issued' row per recipient and plan period, so concurrent attempts
// cannot both record an intent.

// CertificateRow is a certificate with the CA's bookkeeping.
type CertificateRow struct {
	portal.Certificate
	IssuerID     string
	LintFindings []string // pre-issuance lint names (CA staff only)
	Failure      string
	SettledCents int64
	RevokedBy    string
}

// ErrIssuanceInProgress: the recipient already has a live certificate row
// (issuing or issued) for that plan period.
var ErrIssuanceInProgress = &portal.Error{Code: portal.EConflict, Key: "certs.in_progress",
	Message: "This certificate is already being issued or has been issued."}

// ErrRecipientNotReady: the recipient is no longer in the state the
// change needs.
var ErrRecipientNotReady = &portal.Error{Code: portal.EConflict, Key: "certs.not_ready",
	Message: "This certificate request is no longer waiting to be issued."}

const certCols = `id, account_id, order_id, recipient_id, plan_period, serial, status, der, subject, emails, profile,
	not_before, not_after, fingerprint_sha256, revoked_at, COALESCE(revocation_reason,0), created_at,
	issuer_id, lint_findings, failure, settled_cents, revoked_by`

func scanCert(row interface{ Scan(...any) error }) (CertificateRow, error) {
	var c CertificateRow
	var emails, created, lint string
	var nb, na, rev sql.NullString
	err := row.Scan(&c.ID, &c.AccountID, &c.OrderID, &c.RecipientID, &c.PlanPeriod, &c.Serial, &c.Status, &c.DER,
		&c.Subject, &emails, &c.Profile, &nb, &na, &c.FingerprintSHA, &rev, &c.RevocationReason, &created,
		&c.IssuerID, &lint, &c.Failure, &c.SettledCents, &c.RevokedBy)
	if err != nil {
		return c, err
	}
	if emails != "" {
		c.Emails = strings.Split(emails, ",")
	}
	if lint != "" {
		c.LintFindings = strings.Split(lint, ",")
	}
	c.NotBefore, c.NotAfter, c.RevokedAt = parseNullTime(nb), parseNullTime(na), parseNullTime(rev)
	c.CreatedAt = parseTime(created)
	return c, nil
}

func (db *DB) certs(ctx context.Context, q Querier, where string, args ...any) ([]CertificateRow, error) {
	if q == nil {
		q = db.DB
	}
	rows, err := q.QueryContext(ctx, `SELECT `+certCols+` FROM certificates WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CertificateRow
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (db *DB) cert(ctx context.Context, q Querier, where string, args ...any) (CertificateRow, error) {
	if q == nil {
		q = db.DB
	}
	c, err := scanCert(q.QueryRowContext(ctx, `SELECT `+certCols+` FROM certificates WHERE `+where, args...))
	return c, notFound(err, "certificate")
}

// BeginIssuance records the intent to issue (status 'issuing', the serial,
// the recipient's addresses) inside tx, BEFORE anything is signed. A second
// live row for the same recipient and plan period returns
// ErrIssuanceInProgress.
func (db *DB) BeginIssuance(ctx context.Context, tx *sql.Tx, c *portal.Certificate, issuerID string) error {
	c.Status = "issuing"
	c.CreatedAt = db.now()
	res, err := tx.ExecContext(ctx, `INSERT INTO certificates(account_id, order_id, recipient_id, plan_period, serial, status,
		emails, profile, issuer_id, created_at) VALUES (?, ?, ?, ?, ?, 'issuing', ?, ?, ?, ?)`,
		c.AccountID, c.OrderID, c.RecipientID, c.PlanPeriod, c.Serial, strings.Join(c.Emails, ","), c.Profile, issuerID,
		fmtTime(c.CreatedAt))
	if isUnique(err) && !strings.Contains(err.Error(), "certificates.serial") {
		return ErrIssuanceInProgress
	}
	if err != nil {
		return err
	}
	c.ID, err = res.LastInsertId()
	return err
}

// BeginIssuances is BeginIssuance for a batch, inside one transaction,
// with the recipient check folded in: an intent row is recorded only when
// the recipient is still 'ready' in the certificate's plan period. errs[i]
// is nil when certs[i] got its row (its ID set), ErrRecipientNotReady or
// ErrIssuanceInProgress (the statement failed alone; tx goes on). err is a
// database failure: tx must be rolled back.
func (db *DB) BeginIssuances(ctx context.Context, tx *sql.Tx, certs []*portal.Certificate, issuerID string) (errs []error, err error) {
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO certificates(account_id, order_id, recipient_id, plan_period, serial, status,
		emails, profile, issuer_id, created_at)
		SELECT ?, ?, ?, ?, ?, 'issuing', ?, ?, ?, ? WHERE EXISTS (
			SELECT 1 FROM recipients WHERE id = ? AND status = 'ready' AND plan_period = ?)`)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	errs = make([]error, len(certs))
	now := db.now()
	for i, c := range certs {
		c.Status, c.CreatedAt = "issuing", now
		res, err := stmt.ExecContext(ctx, c.AccountID, c.OrderID, c.RecipientID, c.PlanPeriod, c.Serial,
			strings.Join(c.Emails, ","), c.Profile, issuerID, fmtTime(now), c.RecipientID, c.PlanPeriod)
		if isUnique(err) && !strings.Contains(err.Error(), "certificates.serial") {
			// SQLite undoes only the failed statement (ON CONFLICT ABORT).
			errs[i] = ErrIssuanceInProgress
			continue
		}
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			errs[i] = ErrRecipientNotReady
			continue
		}
		if c.ID, err = res.LastInsertId(); err != nil {
			return nil, err
		}
	}
	return errs, nil
}

// CompleteIssuance stores the signed certificate (status 'issued') and
// marks its recipient issued with it as the current certificate, inside tx
// (with the payment and the emails). The row must still be 'issuing' and
// the recipient 'ready' (ErrRecipientNotReady otherwise).
//
// The SHA-256 of the certificate's subjectPublicKeyInfo is stored with it
// (compromised.go). A certificate whose key was reported compromised
// meanwhile (a keyCompromise revocation that committed while it was
// signed) is not stored: ErrKeyCompromised (SBR 6.1.1.3 (4)).
func (db *DB) CompleteIssuance(ctx context.Context, tx *sql.Tx, c portal.Certificate, settledCents int64) error {
	spki := c.SPKISHA256 // the pipeline has it from the certificate it just parsed
	if spki == "" {
		spki = spkiHashOfCert(c.DER)
	}
	if bad, err := db.keyCompromised(ctx, tx, spki); err != nil {
		return err
	} else if bad {
		return ErrKeyCompromised
	}
	res, err := tx.ExecContext(ctx, `UPDATE certificates SET status = 'issued', der = ?, subject = ?, emails = ?, profile = ?,
		not_before = ?, not_after = ?, fingerprint_sha256 = ?, settled_cents = ?, spki_sha256 = ? WHERE id = ? AND status = 'issuing'`,
		c.DER, c.Subject, strings.Join(c.Emails, ","), c.Profile, fmtTime(c.NotBefore), fmtTime(c.NotAfter),
		c.FingerprintSHA, settledCents, spki, c.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return portal.Errorf(portal.EConflict, "certificate %d is no longer being issued", c.ID)
	}
	res, err = tx.ExecContext(ctx, `UPDATE recipients SET status = 'issued', certificate_id = ?, held_reason = ''
		WHERE id = ? AND status = 'ready'`, c.ID, c.RecipientID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrRecipientNotReady
	}
	return nil
}

// FailIssuance marks an 'issuing' row 'failed': nothing was signed with
// the CA key (a lint finding or a request the CA refused). lint names are
// kept for CA staff.
func (db *DB) FailIssuance(ctx context.Context, q Querier, id int64, lint []string, failure string) error {
	if q == nil {
		q = db.DB
	}
	_, err := q.ExecContext(ctx, `UPDATE certificates SET status = 'failed', lint_findings = ?, failure = ?
		WHERE id = ? AND status = 'issuing'`, strings.Join(lint, ","), failure, id)
	return err
}

// RevokeUnstored revokes (cessationOfOperation) a row whose certificate
// was, or may have been, signed but never delivered: a crash between
// signing and the completing transaction, or a completion that failed.
// der is kept when known. The serial then appears on the CRL and OCSP
// answers revoked for it, so a certificate nobody should hold is never
// "good" (and never "unknown": every signed serial keeps its record).
func (db *DB) RevokeUnstored(ctx context.Context, q Querier, id int64, der []byte, failure string) error {
	if q == nil {
		q = db.DB
	}
	var d, spki any
	if len(der) > 0 {
		d, spki = der, spkiHashOfCert(der)
	}
	_, err := q.ExecContext(ctx, `UPDATE certificates SET status = 'revoked', der = COALESCE(?, der), failure = ?,
		revoked_at = ?, revocation_reason = 5, revoked_by = 'system', spki_sha256 = COALESCE(?, spki_sha256)
		WHERE id = ? AND status IN ('issuing','failed')`,
		d, failure, fmtTime(db.now()), spki, id)
	return err
}

// HoldRecipient puts a ready recipient on hold with a reason the requestor
// sees ("issuance held for review", a CAA refusal). It reports whether the
// recipient was ready.
func (db *DB) HoldRecipient(ctx context.Context, q Querier, id int64, reason string) (bool, error) {
	if q == nil {
		q = db.DB
	}
	res, err := q.ExecContext(ctx, `UPDATE recipients SET status = 'held', held_reason = ? WHERE id = ? AND status = 'ready'`, reason, id)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// StaleIssuing lists 'issuing' rows created before t (crash recovery).
func (db *DB) StaleIssuing(ctx context.Context, before time.Time) ([]portal.Certificate, error) {
	rows, err := db.certs(ctx, nil, `status = 'issuing' AND created_at < ? ORDER BY id`, fmtTime(before))
	return plain(rows), err
}

func plain(rows []CertificateRow) []portal.Certificate {
	out := make([]portal.Certificate, len(rows))
	for i, r := range rows {
		out[i] = r.Certificate
	}
	return out
}

// SettledForRecipient sums what was settled for a recipient's certificates
// (a re-issue in the same period is not charged again).
func (db *DB) SettledForRecipient(ctx context.Context, q Querier, recipientID int64) (int64, error) {
	if q == nil {
		q = db.DB
	}
	var n int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(settled_cents),0) FROM certificates WHERE recipient_id = ?`, recipientID).Scan(&n)
	return n, err
}

// IssuedCertificate loads a certificate by id without account scope
// (background work; callers check the owner).
func (db *DB) IssuedCertificate(ctx context.Context, q Querier, id int64) (portal.Certificate, error) {
	c, err := db.cert(ctx, q, `id = ?`, id)
	return c.Certificate, err
}

// Certificate loads an account's certificate (with a DER). Another
// account's id is not found.
func (db *DB) Certificate(ctx context.Context, q Querier, accountID, id int64) (CertificateRow, error) {
	return db.cert(ctx, q, `id = ? AND account_id = ? AND der IS NOT NULL AND failure = ''`, id, accountID)
}

// ListCertificates lists an account's certificates (issued or revoked by a
// person; never rows that were not delivered), newest first.
func (db *DB) ListCertificates(ctx context.Context, accountID int64, limit, offset int) ([]CertificateRow, int, error) {
	const where = `account_id = ? AND der IS NOT NULL AND failure = ''`
	var total int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM certificates WHERE `+where, accountID).Scan(&total); err != nil {
		return nil, 0, err
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	rows, err := db.certs(ctx, nil, where+` ORDER BY id DESC LIMIT ? OFFSET ?`, accountID, limit, max(offset, 0))
	return rows, total, err
}

// RevokeCertificate revokes an issued certificate of an account
// (accountID 0: any account, for the system) with an RFC 5280 reason code,
// recording who did it. An already revoked certificate is a conflict
// ("certs.already_revoked"); another account's is not found.
//
// With reason keyCompromise (1) the certificate's key is recorded as
// compromised and every other live certificate of that key is revoked
// too, in tx (SBR 4.9.1.1 (3); compromised.go).
func (db *DB) RevokeCertificate(ctx context.Context, tx *sql.Tx, accountID, id int64, reason int, at time.Time, by string) error {
	q := `UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?, revoked_by = ?
		WHERE id = ? AND status = 'issued'`
	args := []any{fmtTime(at), reason, by, id}
	if accountID != 0 {
		q += ` AND account_id = ?`
		args = append(args, accountID)
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		if reason == ReasonKeyCompromise {
			_, err := db.compromiseKey(ctx, tx, id, at, by)
			return err
		}
		return nil
	}
	var st string
	w, a := `id = ?`, []any{id}
	if accountID != 0 {
		w, a = w+` AND account_id = ?`, append(a, accountID)
	}
	if err := tx.QueryRowContext(ctx, `SELECT status FROM certificates WHERE `+w+` AND der IS NOT NULL`, a...).Scan(&st); err != nil {
		return notFound(err, "certificate")
	}
	if st == "revoked" {
		return &portal.Error{Code: portal.EConflict, Key: "certs.already_revoked", Message: "This certificate is already revoked."}
	}
	return &portal.Error{Code: portal.EConflict, Key: "certs.not_revocable", Message: "This certificate cannot be revoked."}
}

// RevokedCertificates lists the revoked serials of one issuing CA (for
// its CRL), oldest first.
func (db *DB) RevokedCertificates(ctx context.Context, q Querier, issuerID string) ([]portal.Certificate, error) {
	if q == nil {
		q = db.DB
	}
	rows, err := q.QueryContext(ctx, `SELECT serial, revoked_at, COALESCE(revocation_reason,0) FROM certificates
		WHERE issuer_id = ? AND status = 'revoked' ORDER BY revoked_at, id`, issuerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []portal.Certificate
	for rows.Next() {
		var c portal.Certificate
		var at sql.NullString
		if err := rows.Scan(&c.Serial, &at, &c.RevocationReason); err != nil {
			return nil, err
		}
		c.Status, c.RevokedAt = "revoked", parseNullTime(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// CertificateBySerial finds a serial of an issuing CA (for OCSP); a serial
// never recorded is not found. serialHex is upper-case hex without leading
// zeros (ordering.SerialHex).
func (db *DB) CertificateBySerial(ctx context.Context, issuerID, serialHex string) (portal.Certificate, error) {
	c, err := db.cert(ctx, nil, `serial = ? AND issuer_id = ?`, serialHex, issuerID)
	return c.Certificate, err
}

// NextCRLNumber returns the number for an issuer's next CRL (1 for the
// first), inside tx.
func (db *DB) NextCRLNumber(ctx context.Context, tx *sql.Tx, issuerID string) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, `SELECT number FROM crls WHERE issuer_id = ?`, issuerID).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	return n + 1, nil
}

// SaveCRL stores an issuer's newest CRL, inside tx.
func (db *DB) SaveCRL(ctx context.Context, tx *sql.Tx, issuerID string, number int64, der []byte, thisUpdate, nextUpdate time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO crls(issuer_id, number, der, this_update, next_update) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(issuer_id) DO UPDATE SET number = excluded.number, der = excluded.der,
		this_update = excluded.this_update, next_update = excluded.next_update`,
		issuerID, number, der, fmtTime(thisUpdate), fmtTime(nextUpdate))
	return err
}

// CRL returns an issuer's stored CRL and its times; not found when none
// was made yet.
func (db *DB) CRL(ctx context.Context, issuerID string) (der []byte, number int64, thisUpdate, nextUpdate time.Time, err error) {
	var tu, nu string
	err = db.QueryRowContext(ctx, `SELECT der, number, this_update, next_update FROM crls WHERE issuer_id = ?`, issuerID).Scan(&der, &number, &tu, &nu)
	if err != nil {
		return nil, 0, time.Time{}, time.Time{}, notFound(err, "CRL")
	}
	return der, number, parseTime(tu), parseTime(nu), nil
}

// SetRecipientCSR stores a CSR made by KeyGen and makes the recipient
// ready, only when it awaits key generation (false otherwise).
func (db *DB) SetRecipientCSR(ctx context.Context, tx *sql.Tx, id int64, csrPEM string) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE recipients SET csr_pem = ?, status = 'ready', held_reason = ''
		WHERE id = ? AND status = 'awaiting_key_generation'`, csrPEM, id)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// WithdrawKeyGenCSR takes back csrPEM from a recipient whose issuance
// through a KeyGen link did not complete: the key exists only in the
// recipient's page, which drops it, so issuing that CSR later would make a
// certificate nobody can use (and charge for it). A held recipient stays
// held, for CA staff, without a CSR (ReleaseHeld then sends it back to key
// generation); one still ready awaits key generation again (its link,
// unspent, works again); one sent back to a validation that lapsed keeps
// waiting for it without the CSR (once revalidated it gets a new link).
// Nothing changes when the recipient meanwhile has
// another CSR or another status; status is "" then.
func (db *DB) WithdrawKeyGenCSR(ctx context.Context, id int64, csrPEM string) (status portal.RecipientStatus, err error) {
	var st string
	err = db.QueryRowContext(ctx, `UPDATE recipients SET csr_pem = '',
		status = CASE status WHEN 'ready' THEN 'awaiting_key_generation' ELSE status END
		WHERE id = ? AND csr_pem = ? AND status IN ('ready', 'held', 'awaiting_organization_validation',
			'awaiting_domain_validation', 'awaiting_mailbox_validation') RETURNING status`, id, csrPEM).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return portal.RecipientStatus(st), err
}

// ResetRecipientForKeyGen sends an issued recipient back to key
// generation (its certificate was revoked as superseded): no CSR, no
// current certificate, and its order pending again.
func (db *DB) ResetRecipientForKeyGen(ctx context.Context, tx *sql.Tx, id int64) error {
	res, err := tx.ExecContext(ctx, `UPDATE recipients SET status = 'awaiting_key_generation', csr_pem = '', certificate_id = NULL,
		held_reason = '' WHERE id = ? AND status = 'issued'`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrRecipientNotReady
	}
	_, err = tx.ExecContext(ctx, `UPDATE orders SET status = 'pending' WHERE status = 'completed'
		AND id = (SELECT order_id FROM recipients WHERE id = ?)`, id)
	return err
}

// HeldIssuances lists refused issuances with their lint names and
// reasons, newest first (CA staff).
func (db *DB) HeldIssuances(ctx context.Context, limit int) ([]CertificateRow, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	return db.certs(ctx, nil, `status = 'failed' OR failure <> '' ORDER BY id DESC LIMIT ?`, limit)
}

// LastRevokedAt is the newest revocation time of an issuer's
// certificates (zero when none): a CRL older than it is out of date.
func (db *DB) LastRevokedAt(ctx context.Context, issuerID string) (time.Time, error) {
	var at sql.NullString
	err := db.QueryRowContext(ctx, `SELECT MAX(revoked_at) FROM certificates WHERE issuer_id = ? AND status = 'revoked'`, issuerID).Scan(&at)
	return parseNullTime(at), err
}
