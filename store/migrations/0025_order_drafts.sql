-- An order form in progress, kept server-side while the requestor visits
-- the deposit page, so they come back to everything they typed.
CREATE TABLE order_drafts (
	id INTEGER PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	token TEXT NOT NULL UNIQUE,
	body TEXT NOT NULL,
	created_at TEXT NOT NULL
);
