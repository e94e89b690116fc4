CREATE TABLE accounts (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	created_at TEXT NOT NULL
);

CREATE TABLE users (
	id INTEGER PRIMARY KEY,
	account_id INTEGER REFERENCES accounts(id),
	email TEXT NOT NULL UNIQUE COLLATE NOCASE,
	name TEXT NOT NULL,
	role TEXT NOT NULL CHECK (role IN ('account_admin','user','validation_agent','ca_admin')),
	lang TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL,
	created_at TEXT NOT NULL,
	CHECK ((role IN ('account_admin','user')) = (account_id IS NOT NULL))
);

-- Server-side session records: the cookie carries only the session id, so
-- sign-out deletes the row and a copied old cookie no longer works.
CREATE TABLE sessions (
	id_hash TEXT PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	created_at TEXT NOT NULL,
	last_seen_at TEXT NOT NULL,
	ip TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions(user_id);

-- One-time tokens (setup link and later flows): stored hashed.
CREATE TABLE setup_tokens (
	token_hash TEXT PRIMARY KEY,
	purpose TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	used_at TEXT
);

-- Failed sign-in attempts for rate limiting per account and per address.
CREATE TABLE signin_failures (
	id INTEGER PRIMARY KEY,
	email TEXT NOT NULL COLLATE NOCASE,
	ip TEXT NOT NULL,
	at TEXT NOT NULL
);
CREATE INDEX signin_failures_email ON signin_failures(email, at);
CREATE INDEX signin_failures_ip ON signin_failures(ip, at);

-- Audit log: who, what, when, from where.
CREATE TABLE audit_log (
	id INTEGER PRIMARY KEY,
	at TEXT NOT NULL,
	actor_user_id INTEGER,
	actor TEXT NOT NULL,
	ip TEXT NOT NULL DEFAULT '',
	action TEXT NOT NULL,
	object_type TEXT NOT NULL DEFAULT '',
	object_id INTEGER,
	account_id INTEGER,
	detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log(at);
