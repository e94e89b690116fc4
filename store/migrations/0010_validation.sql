-- Validation (internal/validation service): organization verification
-- codes, constructed-email approval links, mailbox confirmation links, and
-- what the domain and organization rows need beside the core columns.
-- Every link and code is stored as a SHA-256 hash only.

ALTER TABLE organizations ADD COLUMN lang TEXT NOT NULL DEFAULT 'en';
ALTER TABLE organizations ADD COLUMN updated_at TEXT;

ALTER TABLE domains ADD COLUMN lang TEXT NOT NULL DEFAULT 'en';
-- method and BR version that validated the domain (SBR 3.2.2 record)
ALTER TABLE domains ADD COLUMN validation_method TEXT NOT NULL DEFAULT '';
ALTER TABLE domains ADD COLUMN last_check_at TEXT;
ALTER TABLE domains ADD COLUMN last_check_ok INTEGER NOT NULL DEFAULT 0;
ALTER TABLE domains ADD COLUMN last_check_detail TEXT NOT NULL DEFAULT '';
ALTER TABLE domains ADD COLUMN last_check_found TEXT NOT NULL DEFAULT '';
ALTER TABLE domains ADD COLUMN last_check_expected TEXT NOT NULL DEFAULT '';

-- Voicemail verification codes ("left a message"), 7 days, counted tries.
CREATE TABLE org_codes (
	id INTEGER PRIMARY KEY,
	organization_id INTEGER NOT NULL REFERENCES organizations(id),
	code_hash TEXT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	used_at TEXT,
	killed_at TEXT,
	failed_attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX org_codes_org ON org_codes(organization_id, id);

-- TLS BR 3.2.2.4.4 approval links: one per constructed address, 30 days.
CREATE TABLE domain_email_tokens (
	id INTEGER PRIMARY KEY,
	domain_id INTEGER NOT NULL REFERENCES domains(id),
	email TEXT NOT NULL,
	token_hash TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	used_at TEXT,
	killed_at TEXT
);
CREATE INDEX domain_email_tokens_domain ON domain_email_tokens(domain_id);

-- SBR 3.2.2.2 mailbox links: 24 hours, single-use; validated_at is reused
-- for 30 days.
CREATE TABLE mailbox_validations (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id),
	email TEXT NOT NULL,
	token_hash TEXT NOT NULL UNIQUE,
	order_id INTEGER,
	lang TEXT NOT NULL DEFAULT 'en',
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	used_at TEXT,
	killed_at TEXT,
	validated_at TEXT
);
CREATE INDEX mailbox_validations_email ON mailbox_validations(account_id, email, id);
