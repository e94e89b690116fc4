-- Compromised keys (SBR 4.9.1.1 (3), 6.1.1.3 (4); store/compromised.go).
-- When a certificate is revoked for keyCompromise (RFC 5280 reason 1), the
-- SHA-256 of its subjectPublicKeyInfo is recorded here and every other live
-- certificate with that key is revoked in the same transaction; a
-- certificate request for a recorded key is refused (order intake and the
-- issuance pipeline), and CompleteIssuance refuses to store one.
--   spki_sha256     lower-case hex SHA-256 of the DER subjectPublicKeyInfo
--   certificate_id  the certificate whose revocation reported the key
--   reported_at     when it was revoked
--   reported_by     who revoked it (user email or "system")
CREATE TABLE compromised_keys (
	spki_sha256 TEXT PRIMARY KEY,
	certificate_id INTEGER REFERENCES certificates(id),
	reported_at TEXT NOT NULL,
	reported_by TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;

-- The same hash for each stored certificate: set by CompleteIssuance from
-- the DER. NULL: not computed yet (rows stored before this migration;
-- store.Open fills them from their DER, see backfillSPKI); '' when a DER
-- does not parse as a certificate.
ALTER TABLE certificates ADD COLUMN spki_sha256 TEXT;
CREATE INDEX certificates_spki ON certificates(spki_sha256);
-- Rows the backfill still has to do (empty once it ran).
CREATE INDEX certificates_spki_missing ON certificates(id) WHERE spki_sha256 IS NULL AND der IS NOT NULL;
