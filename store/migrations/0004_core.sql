-- The relational backbone shared by validation, ordering, issuance and
-- KeyGen. Feature tables live in their own migrations (0010-0019
-- validation, 0020-0029 ordering and billing, 0030-0039 CA, 0040-0049
-- KeyGen). Times are RFC 3339 UTC text.

CREATE TABLE organizations (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id),
	legal_name TEXT NOT NULL,
	assumed_name TEXT NOT NULL DEFAULT '',
	address TEXT NOT NULL DEFAULT '',
	city TEXT NOT NULL DEFAULT '',
	postal_code TEXT NOT NULL DEFAULT '',
	country TEXT NOT NULL DEFAULT '',
	phone TEXT NOT NULL DEFAULT '',
	registration TEXT NOT NULL DEFAULT '',
	org_contact_name TEXT NOT NULL DEFAULT '',
	org_contact_email TEXT NOT NULL DEFAULT '',
	org_contact_phone TEXT NOT NULL DEFAULT '',
	tech_contact_name TEXT NOT NULL DEFAULT '',
	tech_contact_email TEXT NOT NULL DEFAULT '',
	tech_contact_phone TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft','pending','validated','rejected')),
	submitted_at TEXT,
	validated_at TEXT,
	expires_at TEXT,
	validated_by TEXT NOT NULL DEFAULT '',
	notes TEXT NOT NULL DEFAULT '',
	reject_reason TEXT NOT NULL DEFAULT '',
	order_id INTEGER,
	created_at TEXT NOT NULL
);
CREATE INDEX organizations_account ON organizations(account_id);
CREATE INDEX organizations_status ON organizations(status);

CREATE TABLE domains (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id),
	organization_id INTEGER NOT NULL REFERENCES organizations(id),
	name TEXT NOT NULL,
	method TEXT NOT NULL CHECK (method IN ('email','dns_txt','dns_cname','http')),
	random_value TEXT NOT NULL DEFAULT '',
	value_expires_at TEXT,
	status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','validated')),
	validated_at TEXT,
	expires_at TEXT,
	order_id INTEGER,
	created_at TEXT NOT NULL,
	UNIQUE (organization_id, name)
);
CREATE INDEX domains_account ON domains(account_id);

CREATE TABLE orders (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id),
	user_id INTEGER NOT NULL REFERENCES users(id),
	product_id TEXT NOT NULL,
	organization_id INTEGER REFERENCES organizations(id),
	signature_hash TEXT NOT NULL,
	period_start TEXT NOT NULL,
	period_end TEXT NOT NULL,
	auto_renew INTEGER NOT NULL DEFAULT 0,
	payment_method TEXT NOT NULL,
	payment_ref TEXT NOT NULL DEFAULT '',
	amount_cents INTEGER NOT NULL,
	additional_emails TEXT NOT NULL DEFAULT '',
	agreement_version TEXT NOT NULL,
	agreed_at TEXT NOT NULL,
	status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','completed','cancelled')),
	idempotency_key TEXT,
	renewed_from INTEGER,
	created_at TEXT NOT NULL,
	cancelled_at TEXT,
	UNIQUE (account_id, idempotency_key)
);
CREATE INDEX orders_account ON orders(account_id, id);

CREATE TABLE recipients (
	id INTEGER PRIMARY KEY,
	order_id INTEGER NOT NULL REFERENCES orders(id),
	account_id INTEGER NOT NULL REFERENCES accounts(id),
	position INTEGER NOT NULL,
	email TEXT NOT NULL,
	common_name TEXT NOT NULL,
	cn_from_name INTEGER NOT NULL DEFAULT 0,
	csr_pem TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	held_reason TEXT NOT NULL DEFAULT '',
	certificate_id INTEGER,
	plan_period INTEGER NOT NULL DEFAULT 1,
	next_issue_after TEXT
);
CREATE INDEX recipients_order ON recipients(order_id);
CREATE INDEX recipients_status ON recipients(status);
CREATE INDEX recipients_email ON recipients(account_id, email);

-- A certificate row is written with status 'issuing' and its serial
-- BEFORE the CA key signs (intent), then completed in one transaction.
-- The partial unique index below makes issuance idempotent.
CREATE TABLE certificates (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id),
	order_id INTEGER NOT NULL REFERENCES orders(id),
	recipient_id INTEGER NOT NULL REFERENCES recipients(id),
	plan_period INTEGER NOT NULL,
	serial TEXT NOT NULL UNIQUE,
	status TEXT NOT NULL CHECK (status IN ('issuing','issued','revoked','failed')),
	der BLOB,
	subject TEXT NOT NULL DEFAULT '',
	emails TEXT NOT NULL DEFAULT '',
	profile TEXT NOT NULL DEFAULT '',
	not_before TEXT,
	not_after TEXT,
	fingerprint_sha256 TEXT NOT NULL DEFAULT '',
	revoked_at TEXT,
	revocation_reason INTEGER,
	created_at TEXT NOT NULL
);
-- At most one live certificate per recipient and plan period; a revoked
-- one (for example KeyGen's unused certificate) makes room for the next.
CREATE UNIQUE INDEX certificates_live ON certificates(recipient_id, plan_period) WHERE status IN ('issuing','issued');
CREATE INDEX certificates_account ON certificates(account_id, id);
