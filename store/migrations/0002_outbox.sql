-- Transactional outbox: a message is inserted in the same transaction as the
-- change that causes it; the mail worker delivers it.
CREATE TABLE outbox (
	id INTEGER PRIMARY KEY,
	created_at TEXT NOT NULL,
	to_addr TEXT NOT NULL,
	subject TEXT NOT NULL,
	text_body TEXT NOT NULL,
	html_body TEXT NOT NULL DEFAULT '',
	lang TEXT NOT NULL DEFAULT 'en',
	kind TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','sending','sent','failed')),
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt_at TEXT NOT NULL,
	claimed_until TEXT,
	last_error TEXT NOT NULL DEFAULT '',
	sent_at TEXT,
	message_id TEXT NOT NULL UNIQUE
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);

CREATE TABLE outbox_attachments (
	id INTEGER PRIMARY KEY,
	outbox_id INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
	filename TEXT NOT NULL,
	content_type TEXT NOT NULL,
	data BLOB NOT NULL
);
CREATE INDEX outbox_attachments_msg ON outbox_attachments(outbox_id);
