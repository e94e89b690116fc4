-- KeyGen links (internal/ordering LinkService): the emailed link that lets
-- a recipient without a CSR make key and CSR in the browser. Only the
-- SHA-256 of the token is stored. A link is usable while it is not
-- expired (30 days), not replaced by a newer link of the same recipient
-- and not spent (a certificate was issued through it).
--   replaced_at     a newer link was sent (the requestor's "send a new link")
--   spent_at        a certificate was issued through this link
--   certificate_id  that certificate
--   sent_by         who asked for the link ("system" when the order advanced)
CREATE TABLE keygen_links (
	id INTEGER PRIMARY KEY,
	recipient_id INTEGER NOT NULL REFERENCES recipients(id),
	account_id INTEGER NOT NULL REFERENCES accounts(id),
	token_hash TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	replaced_at TEXT,
	spent_at TEXT,
	certificate_id INTEGER REFERENCES certificates(id),
	sent_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX keygen_links_recipient ON keygen_links(recipient_id, id);
