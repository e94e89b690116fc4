package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"certdesk/internal/portal"
	"certdesk/internal/validation"
)

// Organizations and their voicemail codes for the validation service
// (internal/validation.Store). OrgsForAccount in orders.go stays the
// ordering read model.

const orgCols = `id, account_id, legal_name, assumed_name, address, city, postal_code, country, phone, registration,
	org_contact_name, org_contact_email, org_contact_phone, tech_contact_name, tech_contact_email, tech_contact_phone,
	status, submitted_at, validated_at, expires_at, validated_by, notes, reject_reason, COALESCE(order_id,0), created_at`

func scanOrg(row interface{ Scan(...any) error }) (portal.Organization, error) {
	var o portal.Organization
	var st, created string
	var sub, va, ex sql.NullString
	err := row.Scan(&o.ID, &o.AccountID, &o.LegalName, &o.AssumedName, &o.Address, &o.City, &o.PostalCode, &o.Country, &o.Phone,
		&o.Registration, &o.OrgContact.Name, &o.OrgContact.Email, &o.OrgContact.Phone, &o.TechContact.Name, &o.TechContact.Email,
		&o.TechContact.Phone, &st, &sub, &va, &ex, &o.ValidatedBy, &o.Notes, &o.RejectReason, &o.OrderID, &created)
	if err != nil {
		return o, err
	}
	o.Status = portal.OrgStatus(st)
	o.SubmittedAt, o.ValidatedAt, o.ExpiresAt, o.CreatedAt = parseNullTime(sub), parseNullTime(va), parseNullTime(ex), parseTime(created)
	return o, nil
}

func (db *DB) q(q portal.Querier) portal.Querier {
	if q == nil {
		return db.DB
	}
	return q
}

// RecordAudit writes a validation audit event (validation.Store); an
// event without an actor is recorded as "system".
func (db *DB) RecordAudit(ctx context.Context, q portal.Querier, e validation.AuditEvent) error {
	if e.Actor == "" {
		e.Actor = "system"
	}
	return db.Audit(ctx, db.q(q), AuditEntry{ActorID: e.ActorID, Actor: e.Actor, IP: e.IP, Action: e.Action,
		ObjectType: e.ObjectType, ObjectID: e.ObjectID, AccountID: e.AccountID, Detail: e.Detail})
}

// InsertOrg stores a new organization and sets its ID.
func (db *DB) InsertOrg(ctx context.Context, q portal.Querier, o *portal.Organization, lang string) error {
	if o.CreatedAt.IsZero() {
		o.CreatedAt = db.now()
	}
	if o.Status == "" {
		o.Status = portal.OrgDraft
	}
	res, err := db.q(q).ExecContext(ctx, `INSERT INTO organizations(account_id, legal_name, assumed_name, address, city, postal_code,
		country, phone, registration, org_contact_name, org_contact_email, org_contact_phone, tech_contact_name, tech_contact_email,
		tech_contact_phone, status, submitted_at, validated_at, expires_at, validated_by, notes, order_id, created_at, lang)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		o.AccountID, o.LegalName, o.AssumedName, o.Address, o.City, o.PostalCode, o.Country, o.Phone, o.Registration,
		o.OrgContact.Name, o.OrgContact.Email, o.OrgContact.Phone, o.TechContact.Name, o.TechContact.Email, o.TechContact.Phone,
		string(o.Status), fmtNullTime(o.SubmittedAt), fmtNullTime(o.ValidatedAt), fmtNullTime(o.ExpiresAt), o.ValidatedBy, o.Notes,
		nullInt(o.OrderID), fmtTime(o.CreatedAt), langOr(lang))
	if err != nil {
		return err
	}
	o.ID, err = res.LastInsertId()
	return err
}

func langOr(l string) string {
	if l == "" {
		return "en"
	}
	return l
}

// UpdateOrgDetails changes the typed details of an organization (not its
// validation state).
func (db *DB) UpdateOrgDetails(ctx context.Context, q portal.Querier, o portal.Organization) error {
	res, err := db.q(q).ExecContext(ctx, `UPDATE organizations SET legal_name=?, assumed_name=?, address=?, city=?, postal_code=?,
		country=?, phone=?, registration=?, org_contact_name=?, org_contact_email=?, org_contact_phone=?, tech_contact_name=?,
		tech_contact_email=?, tech_contact_phone=?, updated_at=? WHERE id=? AND account_id=?`,
		o.LegalName, o.AssumedName, o.Address, o.City, o.PostalCode, o.Country, o.Phone, o.Registration,
		o.OrgContact.Name, o.OrgContact.Email, o.OrgContact.Phone, o.TechContact.Name, o.TechContact.Email, o.TechContact.Phone,
		fmtTime(db.now()), o.ID, o.AccountID)
	return mustAffect(res, err, "organization")
}

func mustAffect(res sql.Result, err error, what string) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return portal.Errorf(portal.ENotFound, "%s not found", what)
	}
	return nil
}

// Org returns an organization of the account (accountID 0: any account).
func (db *DB) Org(ctx context.Context, q portal.Querier, accountID, id int64) (portal.Organization, error) {
	o, err := scanOrg(db.q(q).QueryRowContext(ctx, `SELECT `+orgCols+` FROM organizations WHERE id = ? AND (? = 0 OR account_id = ?)`,
		id, accountID, accountID))
	return o, notFound(err, "organization")
}

// OrgLang is the language the organization's contacts are written in.
func (db *DB) OrgLang(ctx context.Context, q portal.Querier, id int64) (string, error) {
	var l string
	err := db.q(q).QueryRowContext(ctx, `SELECT lang FROM organizations WHERE id = ?`, id).Scan(&l)
	return l, notFound(err, "organization")
}

func (db *DB) orgs(ctx context.Context, q portal.Querier, where string, args ...any) ([]portal.Organization, error) {
	rows, err := db.q(q).QueryContext(ctx, `SELECT `+orgCols+` FROM organizations WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []portal.Organization
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// ListOrgs lists an account's organizations by legal name.
func (db *DB) ListOrgs(ctx context.Context, q portal.Querier, accountID int64) ([]portal.Organization, error) {
	return db.orgs(ctx, q, `account_id = ? ORDER BY legal_name COLLATE NOCASE, id`, accountID)
}

// PendingOrgs lists every account's pending organizations, oldest
// submission first (the validation queue).
func (db *DB) PendingOrgs(ctx context.Context, q portal.Querier) ([]portal.Organization, error) {
	return db.orgs(ctx, q, `status = 'pending' ORDER BY submitted_at, id`)
}

// SetOrgPending puts an organization in the queue; orderID (when not 0)
// records that validation started as part of that order.
func (db *DB) SetOrgPending(ctx context.Context, q portal.Querier, id int64, at time.Time, orderID int64, lang string) error {
	res, err := db.q(q).ExecContext(ctx, `UPDATE organizations SET status='pending', submitted_at=?, validated_at=NULL, expires_at=NULL,
		validated_by='', reject_reason='', order_id=?, lang=? WHERE id=?`, fmtTime(at), nullInt(orderID), langOr(lang), id)
	return mustAffect(res, err, "organization")
}

// SetOrgValidated records a completed validation.
func (db *DB) SetOrgValidated(ctx context.Context, q portal.Querier, id int64, at, expires time.Time, by, notes string) error {
	res, err := db.q(q).ExecContext(ctx, `UPDATE organizations SET status='validated', validated_at=?, expires_at=?, validated_by=?,
		notes=?, reject_reason='' WHERE id=?`, fmtTime(at), fmtTime(expires), by, notes, id)
	return mustAffect(res, err, "organization")
}

// SetOrgRejected records a rejection with its reason.
func (db *DB) SetOrgRejected(ctx context.Context, q portal.Querier, id int64, reason, by, notes string) error {
	res, err := db.q(q).ExecContext(ctx, `UPDATE organizations SET status='rejected', reject_reason=?, validated_by=?, notes=?,
		validated_at=NULL, expires_at=NULL WHERE id=?`, reason, by, notes, id)
	return mustAffect(res, err, "organization")
}

// InsertOrgCode stores a voicemail code's hash and sets its ID.
func (db *DB) InsertOrgCode(ctx context.Context, q portal.Querier, c *validation.OrgCode) error {
	res, err := db.q(q).ExecContext(ctx, `INSERT INTO org_codes(organization_id, code_hash, created_by, created_at, expires_at)
		VALUES (?,?,?,?,?)`, c.OrganizationID, c.Hash, c.CreatedBy, fmtTime(c.CreatedAt), fmtTime(c.ExpiresAt))
	if err != nil {
		return err
	}
	c.ID, err = res.LastInsertId()
	return err
}

// LatestOrgCode returns the organization's newest code (ENotFound if none).
func (db *DB) LatestOrgCode(ctx context.Context, q portal.Querier, orgID int64) (validation.OrgCode, error) {
	var c validation.OrgCode
	var created, expires string
	var used, killed sql.NullString
	err := db.q(q).QueryRowContext(ctx, `SELECT id, organization_id, code_hash, created_by, created_at, expires_at, used_at, killed_at,
		failed_attempts FROM org_codes WHERE organization_id = ? ORDER BY id DESC LIMIT 1`, orgID).
		Scan(&c.ID, &c.OrganizationID, &c.Hash, &c.CreatedBy, &created, &expires, &used, &killed, &c.FailedAttempts)
	if errors.Is(err, sql.ErrNoRows) {
		return c, portal.Errorf(portal.ENotFound, "no code")
	}
	if err != nil {
		return c, err
	}
	c.CreatedAt, c.ExpiresAt, c.UsedAt, c.KilledAt = parseTime(created), parseTime(expires), parseNullTime(used), parseNullTime(killed)
	return c, nil
}

// AddOrgCodeFailure counts one wrong entry of a code.
func (db *DB) AddOrgCodeFailure(ctx context.Context, q portal.Querier, id int64) error {
	res, err := db.q(q).ExecContext(ctx, `UPDATE org_codes SET failed_attempts = failed_attempts + 1 WHERE id = ?`, id)
	return mustAffect(res, err, "code")
}

// UseOrgCode marks a code used; a code used already is a conflict.
func (db *DB) UseOrgCode(ctx context.Context, q portal.Querier, id int64, at time.Time) error {
	res, err := db.q(q).ExecContext(ctx, `UPDATE org_codes SET used_at = ? WHERE id = ? AND used_at IS NULL AND killed_at IS NULL`, fmtTime(at), id)
	if err := mustAffect(res, err, "code"); portal.ErrorCode(err) == portal.ENotFound {
		return portal.Errorf(portal.EConflict, "This code has already been used.")
	} else if err != nil {
		return err
	}
	return nil
}

// KillOrgCodes voids every open code of the organization.
func (db *DB) KillOrgCodes(ctx context.Context, q portal.Querier, orgID int64, at time.Time) error {
	_, err := db.q(q).ExecContext(ctx, `UPDATE org_codes SET killed_at = ? WHERE organization_id = ? AND used_at IS NULL AND killed_at IS NULL`,
		fmtTime(at), orgID)
	return err
}

// DB implements the validation service's store.
var _ validation.Store = (*DB)(nil)
