-- Running totals of the payment ledger per account, method and kind.
-- LedgerSums runs in every Authorize, inside the order's write turn; the
-- covering index of 0026 still made it read one index entry per ledger row
-- of the account, so an order cost grew with the account's history (0.37 ms
-- per order after 2,000 orders in scripts/benchorders, and growing). The
-- ledger is append-only (nothing updates or deletes its rows; the triggers
-- below refuse it), so an AFTER INSERT trigger keeps these totals exact, in
-- the same transaction as the entry.
CREATE TABLE billing_ledger_totals (
	account_id   INTEGER NOT NULL,
	method       TEXT NOT NULL,
	kind         TEXT NOT NULL,
	amount_cents INTEGER NOT NULL,
	PRIMARY KEY (account_id, method, kind)
) WITHOUT ROWID;

INSERT INTO billing_ledger_totals (account_id, method, kind, amount_cents)
	SELECT account_id, method, kind, SUM(amount_cents) FROM billing_ledger GROUP BY account_id, method, kind;

CREATE TRIGGER billing_ledger_totals_add AFTER INSERT ON billing_ledger BEGIN
	INSERT INTO billing_ledger_totals (account_id, method, kind, amount_cents)
		VALUES (NEW.account_id, NEW.method, NEW.kind, NEW.amount_cents)
		ON CONFLICT (account_id, method, kind) DO UPDATE SET amount_cents = amount_cents + excluded.amount_cents;
END;

CREATE TRIGGER billing_ledger_no_update BEFORE UPDATE ON billing_ledger BEGIN
	SELECT RAISE(ABORT, 'billing_ledger is append-only');
END;

CREATE TRIGGER billing_ledger_no_delete BEFORE DELETE ON billing_ledger BEGIN
	SELECT RAISE(ABORT, 'billing_ledger is append-only');
END;
