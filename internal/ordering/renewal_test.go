package ordering_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"certdesk/internal/ca"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/store"
)

var _ ordering.RenewalStore = (*store.DB)(nil)

// renewBilling is a goroutine-safe ordering.Billing for renewal tests.
type renewBilling struct {
	mu         sync.Mutex
	authorized []int64 // order ids
	methods    []portal.PaymentMethod
	cards      []*ordering.Card
	decline    bool
}

func (f *renewBilling) Quote(ctx context.Context, acct int64, p portal.Product, n, days int) (int64, int64) {
	per := p.PriceCents * int64((days+364)/365)
	return per, per * int64(n)
}
func (f *renewBilling) DefaultMethod(context.Context, int64) portal.PaymentMethod {
	return portal.PayCard
}
func (f *renewBilling) Authorize(ctx context.Context, tx *sql.Tx, acct, order int64, m portal.PaymentMethod, amount int64, c *ordering.Card) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.decline {
		return "", &portal.Error{Code: portal.EInvalid, Field: "card_number", Key: "billing.card.declined", Message: "The card was declined."}
	}
	f.authorized, f.methods, f.cards = append(f.authorized, order), append(f.methods, m), append(f.cards, c)
	return "ref", nil
}
func (f *renewBilling) Release(ctx context.Context, tx *sql.Tx, acct, order int64) error { return nil }

func (f *renewBilling) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.authorized)
}

// renewValidator: mailboxes are validated; restarts are recorded.
type renewValidator struct {
	mu      sync.Mutex
	domains []string
}

func (f *renewValidator) SubmitOrgForOrder(ctx context.Context, tx *sql.Tx, acct, org, order int64) error {
	return nil
}
func (f *renewValidator) StartDomainEmailForOrder(ctx context.Context, tx *sql.Tx, acct, org int64, d string, order int64, lang string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.domains = append(f.domains, d)
	return nil
}
func (f *renewValidator) StartMailboxForOrder(ctx context.Context, tx *sql.Tx, acct int64, email string, order int64, lang string) error {
	return nil
}
func (f *renewValidator) MailboxValidated(ctx context.Context, q portal.Querier, acct int64, email string) (bool, error) {
	return true, nil
}

type renewEnv struct {
	*kgEnv
	svc  *ordering.Service
	bill *renewBilling
	val  *renewValidator
	rn   *ordering.Renewals
}

func newRenewEnv(t *testing.T) *renewEnv {
	kg := newKGEnv(t)
	e := &renewEnv{kgEnv: kg, bill: &renewBilling{}, val: &renewValidator{}}
	kg.p.Mailboxes = e.val // the pipeline asks the same validator as the service (SBR 4.2.1 at issuance)
	e.svc = &ordering.Service{Store: kg.db, Billing: e.bill, Validator: e.val, Issuer: kg.p, KeyGen: kg.ks,
		ParseCSR: ca.ParseCSR, Clock: kg.clock, Log: kg.p.Log}
	e.rn = &ordering.Renewals{Store: kg.db, Orders: e.svc, Clock: kg.clock, Log: kg.p.Log, BaseURL: "http://127.0.0.1:8080"}
	return e
}

func (e *renewEnv) sweep() ordering.SweepResult {
	e.t.Helper()
	res, err := e.rn.Sweep(context.Background())
	if err != nil {
		e.t.Fatalf("Sweep: %v", err)
	}
	return res
}

func (e *renewEnv) cert(id int64) store.CertificateRow {
	e.t.Helper()
	c, err := e.db.Certificate(context.Background(), nil, e.acct, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *renewEnv) mails(to, kind string) int {
	return e.count(`SELECT COUNT(*) FROM outbox WHERE to_addr = ? AND kind = ?`, to, kind)
}

const days = 24 * time.Hour

// A 3-year plan with the order's CSR: period 1 capped at 825 days;
// nothing 31 days before it ends; 30 days before, period 2 starts exactly
// once however many sweeps run (also at the same time), is issued for the
// same key, ends at the order's end, and is not charged again.
func TestPlanNextPeriodWithTheOrdersCSR(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	start := e.clock.Now()
	end := start.Add(1095 * days)
	o := e.order(portal.ProductIndividual, end, portal.RecipientReady, "jane@example.com")
	rid := o.Recipients[0].ID
	if out, err := e.p.Issue(ctx, rid); err != nil || out != ordering.Issued {
		t.Fatalf("period 1: %v %v", out, err)
	}
	c1 := e.cert(e.recipient(rid).CertificateID)
	if got := c1.NotAfter.Sub(c1.NotBefore) + time.Second; got != portal.MaxCertValidity {
		t.Fatalf("period 1 lasts %v, want 825 days", got)
	}
	if c1.PlanPeriod != 1 {
		t.Fatalf("first certificate in period %d", c1.PlanPeriod)
	}

	e.clock.Set(c1.NotAfter.Add(-31 * days))
	if res := e.sweep(); res != (ordering.SweepResult{}) {
		t.Fatalf("31 days before the end: %+v", res)
	}
	if r := e.recipient(rid); r.PlanPeriod != 1 || r.Status != portal.RecipientIssued {
		t.Fatalf("recipient changed 31 days before the end: %+v", r)
	}

	e.clock.Set(c1.NotAfter.Add(-30 * days))
	var wg sync.WaitGroup
	results := make(chan ordering.SweepResult, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.rn.Sweep(ctx)
			if err != nil {
				t.Errorf("concurrent sweep: %v", err)
			}
			results <- res
		}()
	}
	wg.Wait()
	close(results)
	started := 0
	for res := range results {
		started += res.PeriodsStarted
	}
	started += e.sweep().PeriodsStarted
	if started != 1 {
		t.Fatalf("period 2 started %d times, want 1", started)
	}

	r := e.recipient(rid)
	if r.PlanPeriod != 2 || r.Status != portal.RecipientIssued || r.CertificateID == c1.ID {
		t.Fatalf("after the sweep: %+v", r)
	}
	c2 := e.cert(r.CertificateID)
	if c2.PlanPeriod != 2 || c2.Status != "issued" {
		t.Fatalf("second certificate: period %d status %s", c2.PlanPeriod, c2.Status)
	}
	if !c2.NotBefore.Equal(e.clock.Now().Truncate(time.Second)) || !c2.NotAfter.Equal(end.Truncate(time.Second)) {
		t.Errorf("period 2 runs %v - %v, want now %v - the order's end %v", c2.NotBefore, c2.NotAfter, e.clock.Now(), end)
	}
	l1, _ := x509.ParseCertificate(c1.DER)
	l2, err := x509.ParseCertificate(c2.DER)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l1.RawSubjectPublicKeyInfo, l2.RawSubjectPublicKeyInfo) {
		t.Errorf("period 2 is not for the key of the order's CSR")
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ?`, rid); n != 2 {
		t.Errorf("%d certificate rows, want 2", n)
	}
	if c := e.cert(c1.ID); c.Status != "issued" {
		t.Errorf("period 1 certificate is %s; it stays valid until it ends", c.Status)
	}
	if n := e.bill.count(); n != 0 {
		t.Errorf("a plan period authorized a payment %d times", n)
	}
	if n, sum := e.p.Billing.(*fakeSettler).total(); n != 1 || sum != 1000 {
		t.Errorf("settled %d charges, %d cents; want one charge of 1000 (period 2 is paid with the plan)", n, sum)
	}
	if n := e.mails("jane@example.com", ordering.KindPlanNext); n != 1 {
		t.Errorf("%d plan emails, want 1", n)
	}
	m, _ := e.db.LatestOutboxTo(ctx, "jane@example.com", ordering.KindPlanNext)
	if !strings.Contains(m.Text, "certificate 2 of the plan") || !strings.Contains(m.Text, "same key") {
		t.Errorf("plan email:\n%s", m.Text)
	}
	if n := e.mails("jane@example.com", ordering.KindCertIssued); n != 2 {
		t.Errorf("%d issued emails, want 2", n)
	}
	got, _ := e.db.Order(ctx, nil, e.acct, o.ID)
	if got.Status != portal.OrderCompleted {
		t.Errorf("order %s after period 2 was issued, want completed", got.Status)
	}

	// The last certificate reaches the order's end: no period 3.
	e.clock.Set(end.Add(-10 * days))
	if res := e.sweep(); res.PeriodsStarted != 0 {
		t.Errorf("a period after the order's end was started")
	}
	if r := e.recipient(rid); r.PlanPeriod != 2 {
		t.Errorf("plan period %d", r.PlanPeriod)
	}
}

// A recipient whose certificate came through KeyGen gets a new KeyGen
// link for period 2 (a new key), in Dutch when the requestor reads Dutch;
// an order of one year (no plan) and a revoked certificate are left alone.
func TestPlanNextPeriodThroughKeyGen(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	if _, err := e.db.Exec(`UPDATE users SET lang = 'nl' WHERE id = ?`, e.user.ID); err != nil {
		t.Fatal(err)
	}
	start := e.clock.Now()
	end := start.Add(900 * days)
	o := e.order(portal.ProductIndividual, end, portal.RecipientAwaitingKeyGen, "kees@example.com")
	short := e.order(portal.ProductIndividual, start.Add(365*days), portal.RecipientReady, "short@example.com")
	revoked := e.order(portal.ProductIndividual, end, portal.RecipientReady, "gone@example.com")
	rid := o.Recipients[0].ID
	tok := e.send(o, o.Recipients[0])
	if _, err := e.ks.Exchange(ctx, tok, rsaCSR(t)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{short.Recipients[0].ID, revoked.Recipients[0].ID} {
		if _, err := e.p.Issue(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	gone := e.recipient(revoked.Recipients[0].ID)
	if err := e.p.Revoke(ctx, e.acct, gone.CertificateID, 1, "req@example.com"); err != nil {
		t.Fatal(err)
	}
	c1 := e.cert(e.recipient(rid).CertificateID)

	e.clock.Set(c1.NotAfter.Add(-29 * days))
	if res := e.sweep(); res.PeriodsStarted != 1 {
		t.Fatalf("started %d periods, want 1 (the KeyGen plan only)", res.PeriodsStarted)
	}
	r := e.recipient(rid)
	if r.PlanPeriod != 2 || r.Status != portal.RecipientAwaitingKeyGen || r.CSR != "" {
		t.Fatalf("KeyGen recipient after the sweep: %+v", r)
	}
	if r := e.recipient(gone.ID); r.PlanPeriod != 1 {
		t.Errorf("the recipient of a revoked certificate moved on: %+v", r)
	}
	if r := e.recipient(short.Recipients[0].ID); r.PlanPeriod != 1 {
		t.Errorf("a one-year order got a second period")
	}
	m, err := e.db.LatestOutboxTo(ctx, "kees@example.com", ordering.KindPlanNext)
	if err != nil || m.Lang != "nl" || !strings.Contains(m.Text, "KeyGen-link") {
		t.Fatalf("plan email (%v): %s\n%s", err, m.Lang, m.Text)
	}
	if n := e.mails("kees@example.com", ordering.KindKeyGenLink); n != 2 {
		t.Fatalf("%d KeyGen emails, want 2 (period 1 and period 2)", n)
	}
	// The new link makes period 2 with a new key, up to the order's end.
	m, _ = e.db.LatestOutboxTo(ctx, "kees@example.com", ordering.KindKeyGenLink)
	mm := tokenRE.FindStringSubmatch(m.Text)
	if mm == nil {
		t.Fatalf("no link in:\n%s", m.Text)
	}
	k2 := rsa2048OrNew(t)
	got, err := e.ks.Exchange(ctx, mm[1], csrOf(t, k2))
	if err != nil {
		t.Fatal(err)
	}
	c2 := e.cert(got.CertificateID)
	if c2.PlanPeriod != 2 || !c2.NotAfter.Equal(end.Truncate(time.Second)) {
		t.Errorf("period 2 certificate: period %d, ends %v (order ends %v)", c2.PlanPeriod, c2.NotAfter, end)
	}
	if res := e.sweep(); res.PeriodsStarted != 0 {
		t.Errorf("a second sweep started %d periods", res.PeriodsStarted)
	}
}

// A plan of the Organization product whose domain validation is no longer
// current (398 days) waits for a new domain validation, started for the
// order, instead of issuing.
func TestPlanNextPeriodRestartsStaleValidation(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	now := e.clock.Now()
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }
	if _, err := e.db.Exec(`UPDATE domains SET validated_at = ?, expires_at = ? WHERE organization_id = ? AND name = 'example.com'`,
		ts(now), ts(now.Add(portal.DomainValidationReuse)), e.orgID); err != nil {
		t.Fatal(err)
	}
	// The organization was validated again since (825-day reuse).
	o := e.order(portal.ProductOrganization, now.Add(1095*days), portal.RecipientReady, "ops@example.com")
	rid := o.Recipients[0].ID
	if _, err := e.p.Issue(ctx, rid); err != nil {
		t.Fatal(err)
	}
	c1 := e.cert(e.recipient(rid).CertificateID)
	e.clock.Set(c1.NotAfter.Add(-30 * days))
	if _, err := e.db.Exec(`UPDATE organizations SET validated_at = ?, expires_at = ? WHERE id = ?`,
		ts(e.clock.Now()), ts(e.clock.Now().Add(portal.OrgValidationReuse)), e.orgID); err != nil {
		t.Fatal(err)
	}
	if res := e.sweep(); res.PeriodsStarted != 1 {
		t.Fatalf("started %d", res.PeriodsStarted)
	}
	r := e.recipient(rid)
	if r.PlanPeriod != 2 || r.Status != portal.RecipientAwaitingDomain {
		t.Fatalf("recipient: %+v", r)
	}
	if len(e.val.domains) != 1 || e.val.domains[0] != "example.com" {
		t.Errorf("domain validation restarted for %v", e.val.domains)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ?`, rid); n != 1 {
		t.Errorf("issued without a current domain validation: %d rows", n)
	}
	got, _ := e.db.Order(ctx, nil, e.acct, o.ID)
	if got.Status != portal.OrderPending {
		t.Errorf("order %s while period 2 waits, want pending (the scheduler's Advance and IssueReady see it)", got.Status)
	}
}

// Auto-renew: exactly one renewal order, 30 days before the end, through
// Submit (same product, recipients without CSRs, same length, same
// payment method with the card on file), even with concurrent sweeps;
// orders without auto-renew are left alone; a refusal is recorded,
// mailed once and retried a day later.
func TestAutoRenewPlacesOneRenewalOrder(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	start := e.clock.Now()
	end := start.Add(365 * days)
	o := e.order(portal.ProductIndividual, end, portal.RecipientReady, "a@example.com", "b@example.com")
	plain := e.order(portal.ProductIndividual, end, portal.RecipientReady, "c@example.com")
	if _, err := e.db.Exec(`UPDATE orders SET auto_renew = 1, payment_method = 'card' WHERE id = ?`, o.ID); err != nil {
		t.Fatal(err)
	}
	for _, r := range append(o.Recipients, plain.Recipients...) {
		if _, err := e.p.Issue(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}

	e.clock.Set(end.Add(-31 * days))
	if res := e.sweep(); res.Renewed != 0 {
		t.Fatalf("renewed 31 days before the end")
	}
	e.clock.Set(end.Add(-30 * days))
	var wg sync.WaitGroup
	var mu sync.Mutex
	renewed := 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.rn.Sweep(ctx)
			if err != nil {
				t.Errorf("concurrent sweep: %v", err)
			}
			mu.Lock()
			renewed += res.Renewed
			mu.Unlock()
		}()
	}
	wg.Wait()
	renewed += e.sweep().Renewed
	if renewed != 1 {
		t.Fatalf("renewal linked %d times, want 1", renewed)
	}
	if n := e.count(`SELECT COUNT(*) FROM orders WHERE renewed_from = ?`, o.ID); n != 1 {
		t.Fatalf("%d renewal orders, want 1", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM orders WHERE renewed_from = ?`, plain.ID); n != 0 {
		t.Errorf("an order without auto-renew was renewed")
	}
	if n := e.bill.count(); n != 1 {
		t.Errorf("%d payment authorizations, want 1", n)
	}
	if e.bill.methods[0] != portal.PayCard || e.bill.cards[0] == nil || !e.bill.cards[0].OnFile {
		t.Errorf("renewal paid by %s with %+v, want the card on file", e.bill.methods[0], e.bill.cards[0])
	}
	st, err := e.db.RenewalStateOf(ctx, e.acct, o.ID)
	if err != nil || st.RenewalOrderID == 0 {
		t.Fatalf("renewal state %+v %v", st, err)
	}
	ro, err := e.db.Order(ctx, nil, e.acct, st.RenewalOrderID)
	if err != nil {
		t.Fatal(err)
	}
	if ro.RenewedFrom != o.ID || ro.Product != o.Product || !ro.AutoRenew || ro.PaymentMethod != portal.PayCard ||
		ordering.Days(ro.PeriodStart, ro.PeriodEnd) != 365 || ro.AgreementVersion != "t" {
		t.Errorf("renewal order: %+v", ro)
	}
	if len(ro.Recipients) != 2 || ro.Recipients[0].Email != "a@example.com" || ro.Recipients[1].Email != "b@example.com" {
		t.Fatalf("renewal recipients: %+v", ro.Recipients)
	}
	for _, r := range ro.Recipients {
		if r.CSR != "" || r.Status != portal.RecipientAwaitingKeyGen {
			t.Errorf("renewal recipient %s: status %s, CSR %q; want a KeyGen link", r.Email, r.Status, r.CSR)
		}
	}
	if n := e.mails("req@example.com", ordering.KindAutoRenewed); n != 1 {
		t.Errorf("%d auto-renewed emails to the requestor, want 1", n)
	}
	// The renewal order's own end is far: nothing more.
	e.clock.Set(end.Add(10 * days))
	if res := e.sweep(); res.Renewed != 0 {
		t.Errorf("renewed again after the end")
	}
}

func TestAutoRenewRefusedIsRecordedAndRetriedDaily(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	end := e.clock.Now().Add(365 * days)
	o := e.order(portal.ProductIndividual, end, portal.RecipientReady, "a@example.com")
	if _, err := e.db.Exec(`UPDATE orders SET auto_renew = 1 WHERE id = ?`, o.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Issue(ctx, o.Recipients[0].ID); err != nil {
		t.Fatal(err)
	}
	e.bill.decline = true
	e.clock.Set(end.Add(-20 * days))
	if res := e.sweep(); res.Refused != 1 {
		t.Fatalf("refused %d", res.Refused)
	}
	st, _ := e.db.RenewalStateOf(ctx, e.acct, o.ID)
	if st.Failure != "The card was declined." || st.Failures != 1 || st.RenewalOrderID != 0 {
		t.Fatalf("state %+v", st)
	}
	e.clock.Advance(time.Hour)
	if res := e.sweep(); res.Refused != 0 {
		t.Errorf("retried within the day")
	}
	e.clock.Advance(24 * time.Hour)
	if res := e.sweep(); res.Refused != 1 {
		t.Errorf("not retried a day later")
	}
	if n := e.mails("req@example.com", ordering.KindAutoRenewRefused); n != 1 {
		t.Errorf("%d refusal emails, want 1 (the first)", n)
	}
	e.bill.decline = false
	e.clock.Advance(24 * time.Hour)
	if res := e.sweep(); res.Renewed != 1 {
		t.Fatalf("not renewed once the card works")
	}
	st, _ = e.db.RenewalStateOf(ctx, e.acct, o.ID)
	if st.RenewalOrderID == 0 || st.Failure != "" {
		t.Errorf("state after renewal %+v", st)
	}
	if n := e.count(`SELECT COUNT(*) FROM orders WHERE renewed_from = ?`, o.ID); n != 1 {
		t.Errorf("%d renewal orders", n)
	}
}

// A plan's next period opens 30 days before the current certificate ends.
// Revoking that certificate because the person left (affiliationChanged)
// or the organization stopped (cessationOfOperation) ends the open period:
// its KeyGen link is refused and nothing more is issued. Other reasons
// (superseded here) leave it open.
func TestRevokingForDepartureClosesTheOpenPlanPeriod(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	start := e.clock.Now()
	end := start.Add(900 * days)
	var rids []int64
	var toks []string
	for _, em := range []string{"left@example.com", "stays@example.com"} {
		o := e.order(portal.ProductIndividual, end, portal.RecipientAwaitingKeyGen, em)
		tok := e.send(o, o.Recipients[0])
		if _, err := e.ks.Exchange(ctx, tok, rsaCSR(t)); err != nil {
			t.Fatal(err)
		}
		rids = append(rids, o.Recipients[0].ID)
	}
	c1 := e.cert(e.recipient(rids[0]).CertificateID)
	e.clock.Set(c1.NotAfter.Add(-29 * days))
	if res := e.sweep(); res.PeriodsStarted != 2 {
		t.Fatalf("started %d periods, want 2", res.PeriodsStarted)
	}
	for _, rid := range rids {
		r := e.recipient(rid)
		if r.PlanPeriod != 2 || r.Status != portal.RecipientAwaitingKeyGen {
			t.Fatalf("period 2 not open: %+v", r)
		}
		m, _ := e.db.LatestOutboxTo(ctx, r.Email, ordering.KindKeyGenLink)
		toks = append(toks, tokenRE.FindStringSubmatch(m.Text)[1])
	}

	left, stays := e.recipient(rids[0]), e.recipient(rids[1])
	if err := e.p.Revoke(ctx, e.acct, left.CertificateID, 3, "req@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Revoke(ctx, e.acct, stays.CertificateID, 4, "req@example.com"); err != nil {
		t.Fatal(err)
	}
	r0 := e.recipient(rids[0])
	if r0.Status != portal.RecipientCancelled {
		t.Fatalf("after affiliationChanged: %s, want the open period cancelled", r0.Status)
	}
	if o, _, _ := e.db.OrderHead(ctx, nil, r0.OrderID); o.Status != portal.OrderCompleted {
		t.Errorf("the order of the closed period: %s, want completed (nothing left open)", o.Status)
	}
	if _, err := e.ks.Exchange(ctx, toks[0], rsaCSR(t)); err == nil {
		t.Fatal("the departed recipient's KeyGen link still made a certificate")
	}
	if r := e.recipient(rids[1]); r.Status != portal.RecipientAwaitingKeyGen {
		t.Fatalf("after superseded: %s, want the period still open", r.Status)
	}
	if _, err := e.ks.Exchange(ctx, toks[1], rsaCSR(t)); err != nil {
		t.Fatalf("the other recipient's link: %v", err)
	}
}
