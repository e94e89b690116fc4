package ordering_test

// Audit of multi-year plans and auto-renew (issue 5, point 8): each test
// here failed before the fix it names.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"strings"
	"testing"
	"time"

	"certdesk/internal/billing"
	"certdesk/internal/i18n"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/store"
)

// Auto-renew renews the recipients whose certificate is in use: one whose
// certificate the customer revoked (the person left) or who never got one
// was ordered again, charged again and emailed a KeyGen link.
func TestAuditAutoRenewSkipsRevokedAndNeverIssuedRecipients(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	end := e.clock.Now().Add(365 * days)
	o := e.order(portal.ProductIndividual, end, portal.RecipientReady, "stay@example.com", "left@example.com", "never@example.com")
	if _, err := e.db.Exec(`UPDATE orders SET auto_renew = 1 WHERE id = ?`, o.ID); err != nil {
		t.Fatal(err)
	}
	for _, r := range o.Recipients[:2] {
		if out, err := e.p.Issue(ctx, r.ID); err != nil || out != ordering.Issued {
			t.Fatalf("issue %s: %v %v", r.Email, out, err)
		}
	}
	if _, err := e.db.Exec(`UPDATE recipients SET status = 'held', held_reason = 'issuance held for review' WHERE id = ?`, o.Recipients[2].ID); err != nil {
		t.Fatal(err)
	}
	left := e.recipient(o.Recipients[1].ID)
	if err := e.p.Revoke(ctx, e.acct, left.CertificateID, 3, "req@example.com"); err != nil { // affiliationChanged
		t.Fatal(err)
	}

	e.clock.Set(end.Add(-30 * days))
	if res := e.sweep(); res.Renewed != 1 || res.Refused != 0 {
		t.Fatalf("sweep: %+v", res)
	}
	st, err := e.db.RenewalStateOf(ctx, e.acct, o.ID)
	if err != nil || st.RenewalOrderID == 0 {
		t.Fatalf("renewal state %+v %v", st, err)
	}
	ro, err := e.db.Order(ctx, nil, e.acct, st.RenewalOrderID)
	if err != nil {
		t.Fatal(err)
	}
	var emails []string
	for _, r := range ro.Recipients {
		emails = append(emails, r.Email)
	}
	if len(emails) != 1 || emails[0] != "stay@example.com" {
		t.Errorf("renewal order recipients %v, want only stay@example.com", emails)
	}
	_, perOne := e.bill.Quote(ctx, e.acct, mustProductT(t, portal.ProductIndividual), 1, 365)
	if ro.AmountCents != perOne {
		t.Errorf("renewal order amount %d, want %d (one certificate)", ro.AmountCents, perOne)
	}
	for _, to := range []string{"left@example.com", "never@example.com"} {
		if n := e.mails(to, ordering.KindKeyGenLink); n != 0 {
			t.Errorf("%s was sent %d KeyGen links by the renewal", to, n)
		}
	}
	if n := e.mails("stay@example.com", ordering.KindKeyGenLink); n != 1 {
		t.Errorf("stay@example.com got %d KeyGen links, want 1", n)
	}
}

// A plan whose only recipient's current certificate (period 2) was
// revoked is not renewed, and the requestor gets no "renewal failed"
// email: the period-1 certificate, still 'issued' until it ends, made the
// order due, and the renewal was refused for having no recipient (or,
// before recipients were filtered, placed and charged).
func TestAuditAutoRenewNotDueWhenTheCurrentCertificateIsRevoked(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	end := e.clock.Now().Add(1095 * days)
	o := e.order(portal.ProductIndividual, end, portal.RecipientReady, "gone@example.com")
	if _, err := e.db.Exec(`UPDATE orders SET auto_renew = 1 WHERE id = ?`, o.ID); err != nil {
		t.Fatal(err)
	}
	rid := o.Recipients[0].ID
	if _, err := e.p.Issue(ctx, rid); err != nil {
		t.Fatal(err)
	}
	c1 := e.cert(e.recipient(rid).CertificateID)
	e.clock.Set(c1.NotAfter.Add(-30 * days))
	if res := e.sweep(); res.PeriodsStarted != 1 {
		t.Fatalf("period 2 not started: %+v", res)
	}
	r := e.recipient(rid)
	if r.Status != portal.RecipientIssued || r.CertificateID == c1.ID {
		t.Fatalf("period 2 not issued: %+v", r)
	}
	if err := e.p.Revoke(ctx, e.acct, r.CertificateID, 3, "req@example.com"); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(end.Add(-30 * days))
	if res := e.sweep(); res != (ordering.SweepResult{}) {
		t.Errorf("sweep: %+v, want nothing", res)
	}
	if n := e.count(`SELECT COUNT(*) FROM orders WHERE id <> ?`, o.ID); n != 0 {
		t.Errorf("%d renewal orders placed", n)
	}
	if n := e.mails("req@example.com", ordering.KindAutoRenewRefused); n != 0 {
		t.Errorf("%d 'automatic renewal failed' emails", n)
	}
}

// cancellingStore cancels an order (as its requestor would from the order
// page) right after the sweep listed it as due.
type cancellingStore struct {
	*store.DB
	cancel func(orderID int64)
}

func (c cancellingStore) AutoRenewDue(ctx context.Context, after, until, retryBefore time.Time) ([]portal.Order, error) {
	list, err := c.DB.AutoRenewDue(ctx, after, until, retryBefore)
	for _, o := range list {
		c.cancel(o.ID)
	}
	return list, err
}

// An order cancelled after the sweep listed it (the list is read once; a
// card payment per order may take a while) is not renewed: the renewal
// order was placed and the card authorized for a cancelled order.
func TestAuditAutoRenewRechecksTheOrderBeforeSubmitting(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	end := e.clock.Now().Add(365 * days)
	o := e.order(portal.ProductIndividual, end, portal.RecipientAwaitingKeyGen, "a@example.com", "b@example.com")
	if _, err := e.db.Exec(`UPDATE orders SET auto_renew = 1 WHERE id = ?`, o.ID); err != nil {
		t.Fatal(err)
	}
	tok := e.send(o, o.Recipients[0])
	if _, err := e.ks.Exchange(ctx, tok, rsaCSR(t)); err != nil {
		t.Fatal(err)
	}
	// b@example.com still awaits key generation: the order is pending, so
	// its requestor can cancel it.
	e.rn.Store = cancellingStore{DB: e.db, cancel: func(id int64) {
		if err := e.svc.Cancel(ctx, e.user, id); err != nil {
			t.Errorf("cancel: %v", err)
		}
	}}
	e.clock.Set(end.Add(-30 * days))
	res := e.sweep()
	if res.Renewed != 0 {
		t.Errorf("a cancelled order was renewed: %+v", res)
	}
	if n := e.bill.count(); n != 0 {
		t.Errorf("%d payment authorizations for a cancelled order", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM orders WHERE id <> ?`, o.ID); n != 0 {
		t.Errorf("%d renewal orders placed", n)
	}
}

func mustProductT(t *testing.T, id portal.ProductID) portal.Product {
	t.Helper()
	p, ok := portal.ProductByID(id)
	if !ok {
		t.Fatalf("no product %s", id)
	}
	return p
}

// The plan email of a recipient whose order came with a CSR offered a
// new key through a KeyGen link from the requestor; the requestor's "Send
// a new KeyGen link" refuses exactly that recipient (its certificate was
// not made with KeyGen), so the advice was a dead end. English and Dutch.
func TestAuditPlanEmailWithTheOrdersCSROffersNothingThatIsRefused(t *testing.T) {
	for _, lang := range []string{"en", "nl"} {
		t.Run(lang, func(t *testing.T) {
			e := newRenewEnv(t)
			ctx := context.Background()
			o := e.issuedPlan(lang, 1095*days, "jan@example.com")
			rid := o.Recipients[0].ID
			e.clock.Set(e.cert(e.recipient(rid).CertificateID).NotAfter.Add(-30 * days))
			if res := e.sweep(); res.PeriodsStarted != 1 {
				t.Fatalf("sweep: %+v", res)
			}
			err := e.ks.Resend(ctx, e.acct, o.ID, rid, "req@example.com")
			if portal.ErrorCode(err) != portal.EConflict {
				t.Fatalf("the requestor's new KeyGen link for a CSR recipient: %v (this test assumes it is refused)", err)
			}
			m, err := e.db.LatestOutboxTo(ctx, "jan@example.com", ordering.KindPlanNext)
			if err != nil || m.Lang != lang {
				t.Fatalf("plan email: %v, lang %q", err, m.Lang)
			}
			if strings.Contains(m.Text, "KeyGen") {
				t.Errorf("the plan email offers a KeyGen link the requestor cannot send:\n%s", m.Text)
			}
			want := map[string]string{"en": "same key", "nl": "dezelfde sleutel"}[lang]
			if !strings.Contains(m.Text, want) {
				t.Errorf("the plan email does not say the certificate is for the same key:\n%s", m.Text)
			}
		})
	}
}

// decliningBilling refuses every authorization the way the card gateway
// does (billing.ErrCardDeclined, a catalogue key).
type decliningBilling struct{ *renewBilling }

func (decliningBilling) Authorize(context.Context, *sql.Tx, int64, int64, portal.PaymentMethod, int64, *ordering.Card) (string, error) {
	return "", billing.ErrCardDeclined
}

// A refused auto-renew was recorded in English only, so the Dutch order
// page said "De laatste automatische verlenging is mislukt: The card was
// declined. ...". It is recorded in every catalogue language; the English
// text stays what staff and older readers see.
func TestAuditAutoRenewRefusalRecordedInEveryLanguage(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	if _, err := e.db.Exec(`UPDATE users SET lang = 'nl' WHERE id = ?`, e.user.ID); err != nil {
		t.Fatal(err)
	}
	e.svc.Billing = decliningBilling{e.bill}
	end := e.clock.Now().Add(365 * days)
	o := e.order(portal.ProductIndividual, end, portal.RecipientReady, "a@example.com")
	if _, err := e.db.Exec(`UPDATE orders SET auto_renew = 1, payment_method = 'card' WHERE id = ?`, o.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Issue(ctx, o.Recipients[0].ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(end.Add(-30 * days))
	if res := e.sweep(); res.Refused != 1 {
		t.Fatalf("sweep: %+v", res)
	}
	st, err := e.db.RenewalStateOf(ctx, e.acct, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	nl := i18n.For("nl").T("billing.card_declined")
	en := i18n.For("en").T("billing.card_declined")
	if got := st.FailureIn("nl"); got != nl {
		t.Errorf("reason in Dutch: %q, want %q", got, nl)
	}
	if got := st.FailureIn("en"); got != en {
		t.Errorf("reason in English: %q, want %q", got, en)
	}
	if st.Failure != en {
		t.Errorf("recorded reason (English) %q, want %q", st.Failure, en)
	}
	m, err := e.db.LatestOutboxTo(ctx, "req@example.com", ordering.KindAutoRenewRefused)
	if err != nil || !strings.Contains(m.Text, nl) {
		t.Errorf("refusal email (%v):\n%s", err, m.Text)
	}
}

// The CSR kept from the order is checked against today's intake policy
// when the next period starts. Before, a key the policy no longer accepts
// went to issuance, was held ("The RSA key must be ..."), and stayed held:
// a CA admin's release holds it again and the requestor's "Send a new
// KeyGen link" refuses a recipient that is not a KeyGen one, so the paid
// plan period was never issued. Now the recipient makes a new key through
// a KeyGen link, and the plan email says why (English and Dutch).
func TestAuditPlanKeyNoLongerAcceptedGoesToKeyGen(t *testing.T) {
	k1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"en", "nl"} {
		t.Run(lang, func(t *testing.T) {
			e := newRenewEnv(t)
			ctx := context.Background()
			o := e.issuedPlan(lang, 1095*days, "old@example.com")
			rid := o.Recipients[0].ID
			// The CSR on file is one an earlier intake policy accepted and
			// today's refuses (an RSA-1024 key stands in for it).
			if _, err := e.db.Exec(`UPDATE recipients SET csr_pem = ? WHERE id = ?`, csrOf(t, k1024), rid); err != nil {
				t.Fatal(err)
			}
			c1 := e.cert(e.recipient(rid).CertificateID)
			e.clock.Set(c1.NotAfter.Add(-30 * days))
			if res := e.sweep(); res.PeriodsStarted != 1 {
				t.Fatalf("sweep: %+v", res)
			}
			r := e.recipient(rid)
			if r.PlanPeriod != 2 || r.Status != portal.RecipientAwaitingKeyGen || r.CSR != "" {
				t.Fatalf("recipient in period 2: status %s, reason %q, CSR kept %v; want awaiting key generation without the CSR",
					r.Status, r.HeldReason, r.CSR != "")
			}
			if n := e.mails("old@example.com", ordering.KindKeyGenLink); n != 1 {
				t.Errorf("%d KeyGen links, want 1", n)
			}
			m, err := e.db.LatestOutboxTo(ctx, "old@example.com", ordering.KindPlanNext)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]string{"en": {"no longer accepted", "new key", "KeyGen link"},
				"nl": {"niet meer geaccepteerd", "nieuwe sleutel", "KeyGen-link"}}[lang]
			for _, w := range want {
				if !strings.Contains(m.Text, w) {
					t.Errorf("plan email lacks %q:\n%s", w, m.Text)
				}
			}
			if strings.Contains(m.Text, map[string]string{"en": "same key", "nl": "dezelfde sleutel"}[lang]) {
				t.Errorf("plan email still promises the same key:\n%s", m.Text)
			}
		})
	}
}

// The server was down for months, past the current certificate's end and
// over the 30-day window: one sweep starts the next period once, for
// every recipient, issues it from now to the plan's end (never longer than
// 825 days), and a second sweep does nothing. The email said "your current
// one ends on <a date months ago>"; it now says it ended (English, Dutch).
func TestAuditPlanAfterTheServerWasDownForMonths(t *testing.T) {
	for _, lang := range []string{"en", "nl"} {
		t.Run(lang, func(t *testing.T) {
			e := newRenewEnv(t)
			ctx := context.Background()
			end := e.clock.Now().Add(1095 * days)
			o := e.issuedPlan(lang, 1095*days, "jan@example.com", "piet@example.com")
			c1 := e.cert(e.recipient(o.Recipients[0].ID).CertificateID)
			e.clock.Set(c1.NotAfter.Add(100 * days))
			if res := e.sweep(); res.PeriodsStarted != 2 {
				t.Fatalf("first sweep after the outage: %+v", res)
			}
			if res := e.sweep(); res != (ordering.SweepResult{}) {
				t.Errorf("second sweep: %+v", res)
			}
			for _, r0 := range o.Recipients {
				r := e.recipient(r0.ID)
				c := e.cert(r.CertificateID)
				if r.PlanPeriod != 2 || c.PlanPeriod != 2 || !c.NotBefore.Equal(e.clock.Now().Truncate(time.Second)) ||
					!c.NotAfter.Equal(end.Truncate(time.Second)) || c.NotAfter.Sub(c.NotBefore)+time.Second > portal.MaxCertValidity {
					t.Errorf("%s: period %d, certificate %v - %v", r.Email, r.PlanPeriod, c.NotBefore, c.NotAfter)
				}
				if n := e.mails(r.Email, ordering.KindPlanNext); n != 1 {
					t.Errorf("%s: %d plan emails", r.Email, n)
				}
			}
			m, err := e.db.LatestOutboxTo(ctx, "jan@example.com", ordering.KindPlanNext)
			if err != nil {
				t.Fatal(err)
			}
			ended := map[string]string{"en": "ended on " + c1.NotAfter.Format("2006-01-02"), "nl": "verlopen op " + c1.NotAfter.Format("2006-01-02")}[lang]
			if !strings.Contains(m.Text, ended) {
				t.Errorf("plan email does not say the certificate %s:\n%s", ended, m.Text)
			}
		})
	}
}

// Checked (passed before the audit; kept as a boundary guard): a plan of
// exactly 825 days is one certificate; 826 days is two, the second made 30
// days before the first ends and ending at the plan's end; 3 years is two.
// Sweeping every 12 hours over the whole plan, no certificate is longer
// than 825 days (SBR 6.3.2, counted inclusively) or passes the plan's end.
func TestAuditPlanLengthsAtTheBoundary(t *testing.T) {
	for _, tc := range []struct{ days, certs int }{{825, 1}, {826, 2}, {1095, 2}} {
		e := newRenewEnv(t)
		ctx := context.Background()
		start := e.clock.Now()
		end := start.Add(time.Duration(tc.days) * days)
		o := e.order(portal.ProductIndividual, end, portal.RecipientReady, "p@example.com")
		rid := o.Recipients[0].ID
		if _, err := e.p.Issue(ctx, rid); err != nil {
			t.Fatal(err)
		}
		for e.clock.Now().Before(end.Add(2 * days)) {
			e.sweep()
			e.clock.Advance(12 * time.Hour)
		}
		rows, err := e.db.Query(`SELECT id FROM certificates WHERE recipient_id = ? ORDER BY id`, rid)
		if err != nil {
			t.Fatal(err)
		}
		var certs []store.CertificateRow
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			certs = append(certs, e.cert(id))
		}
		rows.Close()
		if len(certs) != tc.certs {
			t.Errorf("%d days: %d certificates, want %d", tc.days, len(certs), tc.certs)
			continue
		}
		for i, c := range certs {
			if c.PlanPeriod != i+1 || c.Status != "issued" || c.NotAfter.Sub(c.NotBefore)+time.Second > portal.MaxCertValidity ||
				c.NotAfter.After(end) {
				t.Errorf("%d days: certificate %d: period %d %s %v - %v (plan ends %v)", tc.days, i+1, c.PlanPeriod, c.Status, c.NotBefore, c.NotAfter, end)
			}
			// made at the first sweep (every 12 hours) 30 days before the
			// previous one ends
			if due := certs[max(i-1, 0)].NotAfter.Add(-30 * days); i > 0 && (c.NotBefore.Before(due) || !c.NotBefore.Before(due.Add(12*time.Hour))) {
				t.Errorf("%d days: certificate %d starts %v; the one before ends %v", tc.days, i+1, c.NotBefore, certs[i-1].NotAfter)
			}
		}
		if last := certs[len(certs)-1]; tc.certs > 1 && !last.NotAfter.Equal(end.Truncate(time.Second)) {
			t.Errorf("%d days: the last certificate ends %v, want the plan's end %v", tc.days, last.NotAfter, end)
		}
	}
}

// racingStore does something to each due recipient right after the sweep
// listed it, as a requestor could while the sweep works through the list
// (it may issue a certificate per recipient, with a CAA look-up each).
type racingStore struct {
	*store.DB
	after func(d ordering.PlanDue)
}

func (s racingStore) PlansDue(ctx context.Context, now, until time.Time) ([]ordering.PlanDue, error) {
	list, err := s.DB.PlansDue(ctx, now, until)
	for _, d := range list {
		s.after(d)
	}
	return list, err
}

// A recipient whose certificate was revoked, or whose order was
// cancelled, after the sweep listed it does not start its next period.
// Before, the revoked one got certificate 2 for the same key at once (the
// key may be the compromised one), and the cancelled order's recipient was
// emailed the plan notice and a KeyGen link.
func TestAuditPlanPeriodNotStartedWhenRevokedOrCancelledMeanwhile(t *testing.T) {
	t.Run("revoked", func(t *testing.T) {
		e := newRenewEnv(t)
		ctx := context.Background()
		o := e.order(portal.ProductIndividual, e.clock.Now().Add(1095*days), portal.RecipientReady, "jan@example.com")
		rid := o.Recipients[0].ID
		if _, err := e.p.Issue(ctx, rid); err != nil {
			t.Fatal(err)
		}
		c1 := e.cert(e.recipient(rid).CertificateID)
		e.rn.Store = racingStore{DB: e.db, after: func(d ordering.PlanDue) {
			if err := e.p.Revoke(ctx, e.acct, c1.ID, 1, "req@example.com"); err != nil { // keyCompromise
				t.Errorf("revoke: %v", err)
			}
		}}
		e.clock.Set(c1.NotAfter.Add(-30 * days))
		if res := e.sweep(); res.PeriodsStarted != 0 {
			t.Errorf("sweep: %+v", res)
		}
		if r := e.recipient(rid); r.PlanPeriod != 1 || r.CertificateID != c1.ID {
			t.Errorf("recipient moved on: period %d, certificate %d (revoked one %d)", r.PlanPeriod, r.CertificateID, c1.ID)
		}
		if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ?`, rid); n != 1 {
			t.Errorf("%d certificates, want only the revoked one", n)
		}
		if n := e.mails("jan@example.com", ordering.KindPlanNext); n != 0 {
			t.Errorf("%d plan emails", n)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		e := newRenewEnv(t)
		ctx := context.Background()
		o := e.order(portal.ProductIndividual, e.clock.Now().Add(1095*days), portal.RecipientAwaitingKeyGen, "a@example.com", "b@example.com")
		tok := e.send(o, o.Recipients[0])
		if _, err := e.ks.Exchange(ctx, tok, rsaCSR(t)); err != nil {
			t.Fatal(err)
		}
		rid := o.Recipients[0].ID
		c1 := e.cert(e.recipient(rid).CertificateID)
		// b@example.com never made a key: the order is pending and can
		// be cancelled from its page.
		e.rn.Store = racingStore{DB: e.db, after: func(d ordering.PlanDue) {
			if err := e.svc.Cancel(ctx, e.user, d.OrderID); err != nil {
				t.Errorf("cancel: %v", err)
			}
		}}
		e.clock.Set(c1.NotAfter.Add(-30 * days))
		if res := e.sweep(); res.PeriodsStarted != 0 {
			t.Errorf("sweep: %+v", res)
		}
		if r := e.recipient(rid); r.PlanPeriod != 1 || r.Status != portal.RecipientIssued {
			t.Errorf("recipient of a cancelled order moved on: period %d, %s", r.PlanPeriod, r.Status)
		}
		if n := e.mails("a@example.com", ordering.KindPlanNext); n != 0 {
			t.Errorf("%d plan emails for a cancelled order", n)
		}
		if n := e.mails("a@example.com", ordering.KindKeyGenLink); n != 1 {
			t.Errorf("%d KeyGen emails, want 1 (period 1 only)", n)
		}
	})
}

// issuedPlan sets the requestor's language, places an Individual plan of
// the given length for emails (each with a CSR) and issues period 1.
func (e *renewEnv) issuedPlan(lang string, length time.Duration, emails ...string) portal.Order {
	e.t.Helper()
	if _, err := e.db.Exec(`UPDATE users SET lang = ? WHERE id = ?`, lang, e.user.ID); err != nil {
		e.t.Fatal(err)
	}
	o := e.order(portal.ProductIndividual, e.clock.Now().Add(length), portal.RecipientReady, emails...)
	for _, r := range o.Recipients {
		if out, err := e.p.Issue(context.Background(), r.ID); err != nil || out != ordering.Issued {
			e.t.Fatalf("period 1 of %s: %v %v", r.Email, out, err)
		}
	}
	return o
}
