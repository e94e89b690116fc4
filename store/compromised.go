package store

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"certdesk/internal/portal"
)

// Compromised keys (migration 0050).
//
// SBR 4.9.1.1 (3): evidence that a subscriber's private key was
// compromised means revoking the certificates of that key, all of them.
// SBR 6.1.1.3 (4): a certificate request for a key the CA knows to be
// compromised is rejected. certdesk learns of a compromise when a
// certificate is revoked with reason keyCompromise (RFC 5280 reason 1):
// RevokeCertificate then records the SHA-256 of the certificate's
// subjectPublicKeyInfo in compromised_keys and revokes every other live
// (issued, not expired) certificate with the same subjectPublicKeyInfo,
// in the same transaction. KeyCompromised answers the intake and the
// issuance pipeline; CompleteIssuance refuses to store a certificate of a
// recorded key (an issuance signed while the revocation committed).

// ReasonKeyCompromise is RFC 5280's CRLReason keyCompromise.
const ReasonKeyCompromise = 1

// ErrKeyCompromised: the certificate or request is for a key recorded as
// compromised; a new key is needed.
var ErrKeyCompromised = &portal.Error{Code: portal.EConflict, Key: "certs.key_compromised",
	Message: "The key of this request was reported compromised; a new key is needed."}

// spkiHashOfCert is the hex SHA-256 of a certificate's DER
// subjectPublicKeyInfo, "" when der is not a certificate.
func spkiHashOfCert(der []byte) string {
	if len(der) == 0 {
		return ""
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// KeyCompromised reports whether the key with this subjectPublicKeyInfo
// SHA-256 (of the DER, as x509.MarshalPKIXPublicKey makes it) was
// recorded as compromised.
func (db *DB) KeyCompromised(ctx context.Context, spkiSHA256 []byte) (bool, error) {
	return db.keyCompromised(ctx, db.DB, hex.EncodeToString(spkiSHA256))
}

func (db *DB) keyCompromised(ctx context.Context, q Querier, h string) (bool, error) {
	if h == "" {
		return false, nil
	}
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM compromised_keys WHERE spki_sha256 = ?`, h).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// compromiseKey records the key of certificate certID as compromised and
// revokes, with reason keyCompromise, every other live certificate of
// that key in the same account (SBR 4.9.1.1), inside tx. It returns how
// many it revoked.
//
// Another account's certificates of the key are not revoked on this report:
// a CSR is not secret, so anyone could order a certificate with another
// subscriber's public key and report it compromised, revoking that
// subscriber's certificates. Doing that across accounts needs proof of
// possession of the private key (not built); CA staff can revoke them. The
// key is still refused for new certificates of any account.
func (db *DB) compromiseKey(ctx context.Context, tx *sql.Tx, certID int64, at time.Time, by string) (int64, error) {
	var spki sql.NullString
	var der []byte
	var serial string
	if err := tx.QueryRowContext(ctx, `SELECT spki_sha256, der, serial FROM certificates WHERE id = ?`, certID).Scan(&spki, &der, &serial); err != nil {
		return 0, err
	}
	h := spki.String
	if h == "" {
		if h = spkiHashOfCert(der); h == "" {
			return 0, nil // no certificate to take a key from
		}
		if _, err := tx.ExecContext(ctx, `UPDATE certificates SET spki_sha256 = ? WHERE id = ?`, h, certID); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO compromised_keys(spki_sha256, certificate_id, reported_at, reported_by)
		VALUES (?, ?, ?, ?) ON CONFLICT(spki_sha256) DO NOTHING`, h, certID, fmtTime(at), by); err != nil {
		return 0, err
	}
	return db.revokeSiblings(ctx, tx, certID, h, serial, at)
}

// revokeSiblings revokes (keyCompromise, at) every live certificate of
// certID's account other than certID whose key has the hash h, the key of
// certificate serial. revoked_by names that serial.
func (db *DB) revokeSiblings(ctx context.Context, tx *sql.Tx, certID int64, h, serial string, at time.Time) (int64, error) {
	res, err := tx.ExecContext(ctx, `UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?, revoked_by = ?
		WHERE spki_sha256 = ? AND status = 'issued' AND not_after > ? AND id <> ?
		AND account_id = (SELECT account_id FROM certificates WHERE id = ?)`,
		fmtTime(at), ReasonKeyCompromise, "system: key compromise reported with certificate "+serial,
		h, fmtTime(at), certID, certID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// backfillBatch is how many certificates backfillSPKI hashes per
// transaction (a variable for tests).
var backfillBatch = 500

// backfillSPKI runs at Open, after the migrations. It fills spki_sha256 of
// certificates stored before migration 0050 from their DER (nothing to do
// once done: the partial index certificates_spki_missing is empty), then
// makes sure every certificate revoked for keyCompromise has its key
// recorded, with the other live certificates of that key revoked (a key
// reported before 0050 was never recorded: the certificates of that key
// issued since are revoked now, and CRLDue sees the newer revocation).
func (db *DB) backfillSPKI(ctx context.Context) error {
	for {
		n := 0
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			n = 0
			rows, err := tx.QueryContext(ctx, `SELECT id, der FROM certificates INDEXED BY certificates_spki_missing
				WHERE spki_sha256 IS NULL AND der IS NOT NULL ORDER BY id LIMIT ?`, backfillBatch)
			if err != nil {
				return err
			}
			type row struct {
				id int64
				h  string
			}
			var todo []row
			for rows.Next() {
				var r row
				var der []byte
				if err := rows.Scan(&r.id, &der); err != nil {
					rows.Close()
					return err
				}
				r.h = spkiHashOfCert(der)
				todo = append(todo, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, r := range todo {
				if _, err := tx.ExecContext(ctx, `UPDATE certificates SET spki_sha256 = ? WHERE id = ?`, r.h, r.id); err != nil {
					return err
				}
			}
			n = len(todo)
			return nil
		})
		if err != nil {
			return fmt.Errorf("backfill certificates.spki_sha256: %w", err)
		}
		if n < backfillBatch {
			break
		}
	}
	return db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT c.id, c.spki_sha256, c.serial, COALESCE(c.revoked_at, ''), c.revoked_by FROM certificates c
			WHERE c.status = 'revoked' AND c.revocation_reason = ? AND c.spki_sha256 <> ''
			AND NOT EXISTS (SELECT 1 FROM compromised_keys k WHERE k.spki_sha256 = c.spki_sha256) ORDER BY c.id`, ReasonKeyCompromise)
		if err != nil {
			return err
		}
		type rep struct {
			id            int64
			h, serial, at string
			by            string
		}
		var reps []rep
		for rows.Next() {
			var r rep
			if err := rows.Scan(&r.id, &r.h, &r.serial, &r.at, &r.by); err != nil {
				rows.Close()
				return err
			}
			reps = append(reps, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		now := db.now()
		for _, r := range reps {
			if _, err := tx.ExecContext(ctx, `INSERT INTO compromised_keys(spki_sha256, certificate_id, reported_at, reported_by)
				VALUES (?, ?, ?, ?) ON CONFLICT(spki_sha256) DO NOTHING`, r.h, r.id, fmtTime(parseTimeOr(r.at, now)), r.by); err != nil {
				return err
			}
			// Revoked now: the other certificates were valid until this
			// moment (a CRL entry never predates the revocation).
			if _, err := db.revokeSiblings(ctx, tx, r.id, r.h, r.serial, now); err != nil {
				return err
			}
		}
		return nil
	})
}

func parseTimeOr(s string, def time.Time) time.Time {
	if t := parseTime(s); !t.IsZero() {
		return t
	}
	return def
}
