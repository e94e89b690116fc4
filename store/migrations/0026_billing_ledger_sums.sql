-- LedgerSums (every Authorize, inside the order's write transaction) sums
-- an account's ledger by method and kind. With only (account_id, id) it
-- read every row of the account and sorted them for the GROUP BY, a cost
-- growing with the account's history (39% of the order transaction after
-- 3,000 orders in scripts/benchorders). This covering index serves the
-- query in group order from the index alone: no table reads, no sort.
CREATE INDEX billing_ledger_sums ON billing_ledger(account_id, method, kind, amount_cents);
