-- Multi-year plans and auto-renew (internal/ordering Renewals, issue 5
-- point 8).
--   renewal_order_id      the order auto-renew placed for this one (set
--                         once: the conditional UPDATE that sets it is
--                         what makes "exactly one renewal order")
--   renewal_failure       why the last auto-renew attempt was refused
--                         (payment, validation rule...), shown to people
--   renewal_attempted_at  when that attempt was made (retried daily)
--   renewal_failures      how many attempts were refused (the requestor
--                         is emailed on the first)
-- The next plan period of a recipient needs no column: recipients.plan_period
-- is bumped by a conditional UPDATE (WHERE plan_period = N AND status =
-- 'issued'), so two sweeps cannot both start period N+1.
ALTER TABLE orders ADD COLUMN renewal_order_id INTEGER REFERENCES orders(id);
ALTER TABLE orders ADD COLUMN renewal_failure TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN renewal_attempted_at TEXT;
ALTER TABLE orders ADD COLUMN renewal_failures INTEGER NOT NULL DEFAULT 0;
-- The sweeps read only orders whose period is still running or just ended.
CREATE INDEX orders_period_end ON orders(period_end);
CREATE INDEX recipients_certificate ON recipients(certificate_id);
