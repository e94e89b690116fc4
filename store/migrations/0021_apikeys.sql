-- API keys: shown once at creation, stored as the SHA-256 of the key.
-- The prefix (the first characters) identifies a key in lists.
CREATE TABLE api_keys (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id),
	user_id INTEGER NOT NULL REFERENCES users(id),
	name TEXT NOT NULL,
	prefix TEXT NOT NULL,
	key_hash TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL,
	last_used_at TEXT,
	revoked_at TEXT
);
CREATE INDEX api_keys_account ON api_keys(account_id, id);
