package store

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"certdesk/internal/portal"
	"certdesk/internal/validation"
)

// Domains and constructed-email approval links (validation.Store).
// DomainsForOrg in orders.go stays the ordering read model.

const domainCols = `id, account_id, organization_id, name, method, random_value, value_expires_at, status, validated_at, expires_at,
	COALESCE(order_id,0), created_at, lang, validation_method, last_check_at, last_check_ok, last_check_detail, last_check_found,
	last_check_expected`

func scanDomain(row interface{ Scan(...any) error }) (validation.DomainRecord, error) {
	var r validation.DomainRecord
	d := &r.Domain
	var m, st, created, found string
	var vexp, va, ex, lca sql.NullString
	err := row.Scan(&d.ID, &d.AccountID, &d.OrganizationID, &d.Name, &m, &d.RandomValue, &vexp, &st, &va, &ex, &d.OrderID, &created,
		&r.Lang, &r.ValidationMethod, &lca, &r.LastCheck.OK, &r.LastCheck.Detail, &found, &r.LastCheck.Expected)
	if err != nil {
		return r, err
	}
	d.Method, d.Status = portal.DCVMethod(m), portal.DomainStatus(st)
	d.ValueExpiresAt, d.ValidatedAt, d.ExpiresAt, d.CreatedAt = parseNullTime(vexp), parseNullTime(va), parseNullTime(ex), parseTime(created)
	r.LastCheck.At = parseNullTime(lca)
	if found != "" {
		r.LastCheck.Found = strings.Split(found, "\n")
	}
	return r, nil
}

// InsertDomain stores a new domain and sets its ID. A second domain of the
// same name for one organization is an invalid-input error.
func (db *DB) InsertDomain(ctx context.Context, q portal.Querier, d *portal.Domain, lang string) error {
	if d.CreatedAt.IsZero() {
		d.CreatedAt = db.now()
	}
	if d.Status == "" {
		d.Status = portal.DomainPending
	}
	res, err := db.q(q).ExecContext(ctx, `INSERT INTO domains(account_id, organization_id, name, method, random_value, value_expires_at,
		status, validated_at, expires_at, order_id, created_at, lang) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		d.AccountID, d.OrganizationID, d.Name, string(d.Method), d.RandomValue, fmtNullTime(d.ValueExpiresAt), string(d.Status),
		fmtNullTime(d.ValidatedAt), fmtNullTime(d.ExpiresAt), nullInt(d.OrderID), fmtTime(d.CreatedAt), langOr(lang))
	if isUnique(err) {
		return &portal.Error{Code: portal.EInvalid, Field: "domain", Key: "val.err.domain_exists", Message: "This domain is already listed for the organization."}
	}
	if err != nil {
		return err
	}
	d.ID, err = res.LastInsertId()
	return err
}

// Domain returns a domain of the account (accountID 0: any account).
func (db *DB) Domain(ctx context.Context, q portal.Querier, accountID, id int64) (validation.DomainRecord, error) {
	r, err := scanDomain(db.q(q).QueryRowContext(ctx, `SELECT `+domainCols+` FROM domains WHERE id = ? AND (? = 0 OR account_id = ?)`,
		id, accountID, accountID))
	return r, notFound(err, "domain")
}

// DomainByName returns the organization's domain of that name.
func (db *DB) DomainByName(ctx context.Context, q portal.Querier, orgID int64, name string) (validation.DomainRecord, error) {
	r, err := scanDomain(db.q(q).QueryRowContext(ctx, `SELECT `+domainCols+` FROM domains WHERE organization_id = ? AND name = ?`, orgID, name))
	return r, notFound(err, "domain")
}

// ListDomains lists the account's domains by organization and name.
func (db *DB) ListDomains(ctx context.Context, q portal.Querier, accountID int64) ([]validation.DomainRecord, error) {
	rows, err := db.q(q).QueryContext(ctx, `SELECT `+domainCols+` FROM domains WHERE account_id = ? ORDER BY organization_id, name`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []validation.DomainRecord
	for rows.Next() {
		r, err := scanDomain(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SetDomainMethod sets a method and a fresh value; the domain is pending
// again and its last check is forgotten.
func (db *DB) SetDomainMethod(ctx context.Context, q portal.Querier, id int64, m portal.DCVMethod, value string, valueExpires time.Time, lang string) error {
	res, err := db.q(q).ExecContext(ctx, `UPDATE domains SET method=?, random_value=?, value_expires_at=?, status='pending', validated_at=NULL,
		expires_at=NULL, validation_method='', lang=?, last_check_at=NULL, last_check_ok=0, last_check_detail='', last_check_found='',
		last_check_expected='' WHERE id=?`, string(m), value, fmtTime(valueExpires), langOr(lang), id)
	return mustAffect(res, err, "domain")
}

// SetDomainValidated records a completed validation.
func (db *DB) SetDomainValidated(ctx context.Context, q portal.Querier, id int64, at, expires time.Time, method string) error {
	res, err := db.q(q).ExecContext(ctx, `UPDATE domains SET status='validated', validated_at=?, expires_at=?, validation_method=? WHERE id=?`,
		fmtTime(at), fmtTime(expires), method, id)
	return mustAffect(res, err, "domain")
}

// SetDomainCheck stores the last "Check now" outcome.
func (db *DB) SetDomainCheck(ctx context.Context, q portal.Querier, id int64, c validation.CheckRecord) error {
	ok := 0
	if c.OK {
		ok = 1
	}
	res, err := db.q(q).ExecContext(ctx, `UPDATE domains SET last_check_at=?, last_check_ok=?, last_check_detail=?, last_check_found=?,
		last_check_expected=? WHERE id=?`, fmtTime(c.At), ok, c.Detail, strings.Join(c.Found, "\n"), c.Expected, id)
	return mustAffect(res, err, "domain")
}

// InsertEmailToken stores an approval link's hash and sets its ID.
func (db *DB) InsertEmailToken(ctx context.Context, q portal.Querier, t *validation.EmailToken) error {
	res, err := db.q(q).ExecContext(ctx, `INSERT INTO domain_email_tokens(domain_id, email, token_hash, created_at, expires_at)
		VALUES (?,?,?,?,?)`, t.DomainID, t.Email, t.Hash, fmtTime(t.CreatedAt), fmtTime(t.ExpiresAt))
	if err != nil {
		return err
	}
	t.ID, err = res.LastInsertId()
	return err
}

// KillEmailTokens voids the domain's unused approval links.
func (db *DB) KillEmailTokens(ctx context.Context, q portal.Querier, domainID int64, at time.Time) error {
	_, err := db.q(q).ExecContext(ctx, `UPDATE domain_email_tokens SET killed_at=? WHERE domain_id=? AND used_at IS NULL AND killed_at IS NULL`,
		fmtTime(at), domainID)
	return err
}

// LiveEmailTokens counts the domain's usable approval links at now.
func (db *DB) LiveEmailTokens(ctx context.Context, q portal.Querier, domainID int64, now time.Time) (int, error) {
	var n int
	err := db.q(q).QueryRowContext(ctx, `SELECT COUNT(*) FROM domain_email_tokens WHERE domain_id=? AND used_at IS NULL AND killed_at IS NULL
		AND expires_at > ?`, domainID, fmtTime(now)).Scan(&n)
	return n, err
}

// EmailTokenByHash finds an approval link by its hash.
func (db *DB) EmailTokenByHash(ctx context.Context, q portal.Querier, hash string) (validation.EmailToken, error) {
	var t validation.EmailToken
	var created, expires string
	var used, killed sql.NullString
	err := db.q(q).QueryRowContext(ctx, `SELECT id, domain_id, email, token_hash, created_at, expires_at, used_at, killed_at
		FROM domain_email_tokens WHERE token_hash = ?`, hash).Scan(&t.ID, &t.DomainID, &t.Email, &t.Hash, &created, &expires, &used, &killed)
	if err != nil {
		return t, notFound(err, "link")
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt, t.KilledAt = parseTime(created), parseTime(expires), parseNullTime(used), parseNullTime(killed)
	return t, nil
}

// UseEmailToken marks a link used; a second use is a conflict.
func (db *DB) UseEmailToken(ctx context.Context, q portal.Querier, id int64, at time.Time) error {
	res, err := db.q(q).ExecContext(ctx, `UPDATE domain_email_tokens SET used_at=? WHERE id=? AND used_at IS NULL AND killed_at IS NULL`, fmtTime(at), id)
	if err := mustAffect(res, err, "link"); portal.ErrorCode(err) == portal.ENotFound {
		return validation.ErrLinkUsed
	} else if err != nil {
		return err
	}
	return nil
}
