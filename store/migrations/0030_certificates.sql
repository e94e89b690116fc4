-- Issuance bookkeeping for the CA (internal/ordering Pipeline).
--   issuer_id      the issuing CA's IssuerID (CRL and OCSP are per issuer)
--   lint_findings  comma-separated pre-issuance lint names (CA staff only)
--   failure        why a row is 'failed' (nothing signed) or was revoked by
--                  the pipeline itself (signed, never delivered)
--   settled_cents  what billing settled when this certificate was issued
--   revoked_by     who revoked it (user email or "system")
ALTER TABLE certificates ADD COLUMN issuer_id TEXT NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN lint_findings TEXT NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN failure TEXT NOT NULL DEFAULT '';
ALTER TABLE certificates ADD COLUMN settled_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE certificates ADD COLUMN revoked_by TEXT NOT NULL DEFAULT '';
CREATE INDEX certificates_status ON certificates(status, issuer_id);
CREATE INDEX certificates_recipient ON certificates(recipient_id, plan_period);

-- The latest CRL of each CA (issuing CA and root), with its number. The
-- number only grows (RFC 5280 5.2.3): it is incremented in the same
-- transaction that stores the new CRL.
CREATE TABLE crls (
	issuer_id TEXT PRIMARY KEY,
	number INTEGER NOT NULL,
	der BLOB NOT NULL,
	this_update TEXT NOT NULL,
	next_update TEXT NOT NULL
);
