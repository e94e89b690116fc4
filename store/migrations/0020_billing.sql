-- Billing: contract terms, cards on file and the payment ledger.
-- Amounts are euro cents. A card is kept as brand, last four digits,
-- expiry and the gateway's token only: never the number or the CVC.

CREATE TABLE billing_contracts (
	account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
	reference TEXT NOT NULL DEFAULT '',
	active INTEGER NOT NULL DEFAULT 1,
	limit_cents INTEGER NOT NULL CHECK (limit_cents >= 0),
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);

-- Per-product prices of a contract, per certificate per year.
CREATE TABLE billing_contract_prices (
	account_id INTEGER NOT NULL REFERENCES billing_contracts(account_id) ON DELETE CASCADE,
	product_id TEXT NOT NULL,
	price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
	PRIMARY KEY (account_id, product_id)
);

CREATE TABLE billing_cards (
	account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
	brand TEXT NOT NULL,
	last4 TEXT NOT NULL CHECK (length(last4) = 4),
	exp_month INTEGER NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
	exp_year INTEGER NOT NULL,
	gateway_ref TEXT NOT NULL,
	created_at TEXT NOT NULL
);

-- Every authorization, capture, release, commitment, usage, hold, debit
-- and deposit. Rows are only ever appended.
CREATE TABLE billing_ledger (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id),
	order_id INTEGER REFERENCES orders(id),
	kind TEXT NOT NULL CHECK (kind IN ('authorize','capture','release','commit','usage','hold','debit','deposit')),
	method TEXT NOT NULL CHECK (method IN ('card','contract','balance')),
	amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
	gateway_ref TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL
);
CREATE INDEX billing_ledger_account ON billing_ledger(account_id, id);
CREATE INDEX billing_ledger_order ON billing_ledger(order_id);
