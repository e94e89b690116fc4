package ordering_test

import (
	"context"
	"crypto"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"io"
	"log/slog"

	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/store"
)

type fakeBilling struct {
	authorized, released []int64
	declineAll           bool
}

func (f *fakeBilling) Quote(ctx context.Context, acct int64, p portal.Product, n, days int) (int64, int64) {
	per := p.PriceCents * int64((days+364)/365)
	return per, per * int64(n)
}
func (f *fakeBilling) DefaultMethod(context.Context, int64) portal.PaymentMethod {
	return portal.PayContract
}
func (f *fakeBilling) Authorize(ctx context.Context, tx *sql.Tx, acct, order int64, m portal.PaymentMethod, amount int64, c *ordering.Card) (string, error) {
	if f.declineAll {
		return "", &portal.Error{Code: portal.EInvalid, Field: "payment_method", Message: "declined"}
	}
	f.authorized = append(f.authorized, order)
	return "ref-1", nil
}
func (f *fakeBilling) Release(ctx context.Context, tx *sql.Tx, acct, order int64) error {
	f.released = append(f.released, order)
	return nil
}

type fakeValidator struct {
	domainTasks, mailboxTasks []string
	orgTasks                  []int64
	mailboxOK                 map[string]bool
}

func (f *fakeValidator) SubmitOrgForOrder(ctx context.Context, tx *sql.Tx, acct, org, order int64) error {
	f.orgTasks = append(f.orgTasks, org)
	return nil
}
func (f *fakeValidator) StartDomainEmailForOrder(ctx context.Context, tx *sql.Tx, acct, org int64, d string, order int64, lang string) error {
	f.domainTasks = append(f.domainTasks, d)
	return nil
}
func (f *fakeValidator) StartMailboxForOrder(ctx context.Context, tx *sql.Tx, acct int64, email string, order int64, lang string) error {
	f.mailboxTasks = append(f.mailboxTasks, email)
	return nil
}
func (f *fakeValidator) MailboxValidated(ctx context.Context, q portal.Querier, acct int64, email string) (bool, error) {
	return f.mailboxOK[email], nil
}

type fakeIssuer struct{ issued []int64 }

func (f *fakeIssuer) IssueRecipient(ctx context.Context, id int64) error {
	f.issued = append(f.issued, id)
	return nil
}

type fakeKeyGen struct{ sent []string }

func (f *fakeKeyGen) SendLink(ctx context.Context, tx *sql.Tx, o portal.Order, r portal.Recipient) error {
	f.sent = append(f.sent, r.Email)
	return nil
}

// parseCSR stands in for ca.ParseCSR: "CSR" is valid, a private key is refused.
func parseCSR(b []byte) (crypto.PublicKey, error) {
	if strings.Contains(string(b), "PRIVATE KEY") {
		return nil, &portal.Error{Code: portal.EInvalid, Field: "csr", Key: "csr.private_key", Message: "This is a private key."}
	}
	if string(b) != "CSR" {
		return nil, &portal.Error{Code: portal.EInvalid, Field: "csr", Key: "csr.parse", Message: "not a CSR"}
	}
	return struct{}{}, nil
}

type env struct {
	db    *store.DB
	svc   *ordering.Service
	bill  *fakeBilling
	val   *fakeValidator
	iss   *fakeIssuer
	kg    *fakeKeyGen
	user  portal.User
	orgID int64
	clock *portal.FixedClock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	clock := portal.NewFixedClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "o.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, _ := db.CreateAccount(ctx, "Example Corp")
	u, err := db.CreateUser(ctx, portal.User{AccountID: a.ID, Email: "req@example.com", Name: "Req", Role: portal.RoleUser, PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	res, err := db.Exec(`INSERT INTO organizations(account_id, legal_name, status, validated_at, expires_at, created_at) VALUES (?, 'Example Corp B.V.', 'validated', ?, ?, ?)`,
		a.ID, now.Format(time.RFC3339Nano), now.Add(portal.OrgValidationReuse).UTC().Format("2006-01-02T15:04:05.000000000Z"), now.Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	orgID, _ := res.LastInsertId()
	_, err = db.Exec(`INSERT INTO domains(account_id, organization_id, name, method, status, validated_at, expires_at, created_at) VALUES (?, ?, 'example.com', 'dns_txt', 'validated', ?, ?, ?)`,
		a.ID, orgID, now.Format(time.RFC3339Nano), now.Add(portal.DomainValidationReuse).UTC().Format("2006-01-02T15:04:05.000000000Z"), now.Format(time.RFC3339Nano))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, bill: &fakeBilling{}, val: &fakeValidator{mailboxOK: map[string]bool{}}, iss: &fakeIssuer{}, kg: &fakeKeyGen{}, user: u, orgID: orgID, clock: clock}
	e.svc = &ordering.Service{Store: db, Billing: e.bill, Validator: e.val, Issuer: e.iss, KeyGen: e.kg, ParseCSR: parseCSR, Clock: clock,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return e
}

func (e *env) input(product portal.ProductID, emails ...string) ordering.Input {
	in := ordering.Input{Product: product, OrganizationID: e.orgID, Validity: ordering.Validity1Y, PaymentMethod: portal.PayContract, Agreed: true}
	p, _ := portal.ProductByID(product)
	for _, em := range emails {
		ri := ordering.RecipientInput{Email: em}
		if p.PersonalName { // sponsor-validated products name the person
			ri.CNFromName, ri.Name = true, "Jane Doe"
		}
		in.Recipients = append(in.Recipients, ri)
	}
	return in
}

func fieldErr(err error, field string) string {
	for _, fe := range portal.AsFieldErrors(err) {
		if fe.Field == field {
			return fe.Message
		}
	}
	return ""
}

func TestSponsorProductsNeedTheName(t *testing.T) {
	e := newEnv(t)
	in := e.input(portal.ProductBusiness, "a@example.com")
	in.Recipients[0].CNFromName = false
	_, err := e.svc.Submit(context.Background(), e.user, in)
	if !strings.Contains(fieldErr(err, "r0_cn"), "recipient's name") {
		t.Fatalf("want the name rule, got %v", err)
	}
	in.Recipients[0].CNFromName, in.Recipients[0].Name = true, ""
	_, err = e.svc.Submit(context.Background(), e.user, in)
	if fieldErr(err, "r0_name") == "" {
		t.Fatalf("empty name accepted: %v", err)
	}
	// the Organization product puts the address in the CN: no name needed
	if _, err := e.svc.Submit(context.Background(), e.user, e.input(portal.ProductOrganization, "b@example.com")); err != nil {
		t.Fatal(err)
	}
}

func TestPublicMailRule(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.Submit(ctx, e.user, e.input(portal.ProductBusiness, "jane@gmail.com"))
	if msg := fieldErr(err, "r0_email"); !strings.Contains(msg, "public mail provider") {
		t.Fatalf("gmail for Business: %v", err)
	}
	o, err := e.svc.Submit(ctx, e.user, e.input(portal.ProductIndividual, "jane@gmail.com"))
	if err != nil {
		t.Fatalf("gmail for Individual: %v", err)
	}
	if o.Recipients[0].Status != portal.RecipientAwaitingMailbox || len(e.val.mailboxTasks) != 1 {
		t.Fatalf("mailbox validation not started: %+v %v", o.Recipients[0], e.val.mailboxTasks)
	}
}

func TestRecipientStatesAfterSubmit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := e.input(portal.ProductBusiness, "a@example.com", "b@sub.example.com", "c@newdomain.nl")
	in.Recipients[0].HasCSR, in.Recipients[0].CSR = true, "CSR"
	o, err := e.svc.Submit(ctx, e.user, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []portal.RecipientStatus{portal.RecipientReady, portal.RecipientAwaitingKeyGen, portal.RecipientAwaitingDomain}
	for i, r := range o.Recipients {
		if r.Status != want[i] {
			t.Errorf("recipient %d (%s): %s, want %s", i, r.Email, r.Status, want[i])
		}
	}
	if len(e.val.domainTasks) != 1 || e.val.domainTasks[0] != "newdomain.nl" {
		t.Errorf("domain tasks: %v", e.val.domainTasks)
	}
	if len(e.iss.issued) != 1 || e.iss.issued[0] != o.Recipients[0].ID {
		t.Errorf("issuer calls: %v", e.iss.issued)
	}
	if len(e.kg.sent) != 1 || e.kg.sent[0] != "b@sub.example.com" {
		t.Errorf("keygen links: %v", e.kg.sent)
	}
	if len(e.bill.authorized) != 1 {
		t.Errorf("payment not authorized")
	}
}

func TestAllErrorsAtOnceAndPrivateKeyRefused(t *testing.T) {
	e := newEnv(t)
	in := ordering.Input{Product: portal.ProductOrganization, Validity: "custom_days", CustomDays: "5000",
		Recipients: []ordering.RecipientInput{{Email: "not an email"}, {Email: "x@example.com", CNFromName: true, Name: "X"},
			{Email: "y@example.com", HasCSR: true, CSR: "-----BEGIN PRIVATE KEY-----\nMII...\n-----END PRIVATE KEY-----"}},
		AdditionalEmails: "ok@example.com, bad@", PaymentMethod: "bitcoin"}
	_, err := e.svc.Submit(context.Background(), e.user, in)
	for _, f := range []string{"organization", "custom_days", "r0_email", "r1_cn", "r2_csr", "additional_emails", "payment_method", "agree"} {
		if fieldErr(err, f) == "" {
			t.Errorf("no error for %s", f)
		}
	}
	if !strings.Contains(fieldErr(err, "r2_csr"), "private key") {
		t.Errorf("private key message: %q", fieldErr(err, "r2_csr"))
	}
	var n int
	e.db.QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&n)
	if n != 0 {
		t.Fatal("an invalid order was stored")
	}
}

func TestIdempotentSubmitAndCancel(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := e.input(portal.ProductBusiness, "a@example.com")
	in.IdempotencyKey = "k1"
	o1, err := e.svc.Submit(ctx, e.user, in)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := e.svc.Submit(ctx, e.user, in)
	if err != nil || o2.ID != o1.ID {
		t.Fatalf("resubmit made another order: %v %d %d", err, o1.ID, o2.ID)
	}
	if len(e.bill.authorized) != 1 {
		t.Fatalf("authorized %d times", len(e.bill.authorized))
	}
	if err := e.svc.Cancel(ctx, e.user, o1.ID); err != nil {
		t.Fatal(err)
	}
	if len(e.bill.released) != 1 {
		t.Fatal("payment not released")
	}
	got, _ := e.db.Order(ctx, nil, e.user.AccountID, o1.ID)
	if got.Status != portal.OrderCancelled || got.Recipients[0].Status != portal.RecipientCancelled {
		t.Fatalf("after cancel: %s %s", got.Status, got.Recipients[0].Status)
	}
	if err := e.svc.Cancel(ctx, e.user, o1.ID); portal.ErrorCode(err) != portal.EConflict {
		t.Fatalf("second cancel: %v", err)
	}
	// another account cannot cancel or see it
	other := e.user
	other.AccountID = 9999
	if err := e.svc.Cancel(ctx, other, o1.ID); portal.ErrorCode(err) != portal.ENotFound {
		t.Fatalf("other account: %v", err)
	}
}

func TestPaymentFailureStoresNothing(t *testing.T) {
	e := newEnv(t)
	e.bill.declineAll = true
	_, err := e.svc.Submit(context.Background(), e.user, e.input(portal.ProductBusiness, "a@example.com"))
	if fieldErr(err, "payment_method") == "" {
		t.Fatalf("want payment error, got %v", err)
	}
	var n int
	e.db.QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&n)
	if n != 0 {
		t.Fatal("order stored despite declined payment")
	}
}

func TestExpiredOrgAndPeriod(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.clock.Advance(portal.OrgValidationReuse + time.Hour) // organization validation expired (825 days)
	o, err := e.svc.Submit(ctx, e.user, e.input(portal.ProductBusiness, "a@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Recipients[0].Status != portal.RecipientAwaitingOrg || len(e.val.orgTasks) != 1 {
		t.Fatalf("expired org: %s %v", o.Recipients[0].Status, e.val.orgTasks)
	}
	now := e.clock.Now()
	for _, c := range []struct {
		v, date, days string
		ok            bool
	}{
		{"3y", "", "", true}, {"custom_days", "", "1095", true}, {"custom_days", "", "1096", false}, {"custom_days", "", "0", false},
		{"custom_date", now.AddDate(0, 0, -1).Format("2006-01-02"), "", false},
		{"custom_date", now.AddDate(3, 0, 1).Format("2006-01-02"), "", false},
		{"custom_date", now.AddDate(2, 0, 0).Format("2006-01-02"), "", true},
	} {
		_, err := ordering.Period(now, c.v, c.date, c.days)
		if (err == nil) != c.ok {
			t.Errorf("%+v: %v", c, err)
		}
	}
	end, _ := ordering.Period(now, "3y", "", "")
	if !ordering.IsPlan(now, end) {
		t.Error("3 years must be a plan (825-day cap)")
	}
	end, _ = ordering.Period(now, "2y", "", "")
	if ordering.IsPlan(now, end) {
		t.Error("2 years fits in one certificate")
	}
}

// Submissions arrive at once (a double-click, a client retrying, other
// requestors): with group commit they share transactions, and still every
// resubmission of one idempotency key returns the one order, every other
// submission makes its own order, and each order is authorized once.
func TestConcurrentSubmitsOneOrderPerKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const same, others = 16, 16
	ids := make([]int64, same+others)
	errs := make([]error, same+others)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := e.input(portal.ProductBusiness, "a@example.com")
			in.IdempotencyKey = "double-click"
			if i >= same {
				in.IdempotencyKey = fmt.Sprint("other-", i)
			}
			o, err := e.svc.Submit(ctx, e.user, in)
			ids[i], errs[i] = o.ID, err
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("submission %d: %v", i, err)
		}
		if i < same && ids[i] != ids[0] {
			t.Fatalf("resubmission %d got order %d, the first got %d", i, ids[i], ids[0])
		}
		if i >= same {
			if seen[ids[i]] || ids[i] == ids[0] {
				t.Fatalf("submission %d shares order %d", i, ids[i])
			}
			seen[ids[i]] = true
		}
	}
	var n int
	e.db.QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&n)
	if n != 1+others || len(e.bill.authorized) != 1+others {
		t.Fatalf("%d orders, %d authorizations; want %d each", n, len(e.bill.authorized), 1+others)
	}
}

// holdingBilling is a Billing with card holds (ordering.CardHolder). Its
// gateway call checks that no write transaction is open meanwhile.
type holdingBilling struct {
	fakeBilling
	db                *store.DB
	holds, released   []string
	recorded          []int64
	failRecord        bool
	writerFreeAtHolds []bool
}

func (h *holdingBilling) HoldCard(ctx context.Context, acct, amount int64, c *ordering.Card) (ordering.CardHold, error) {
	if c.Number == "4000000000000002" {
		return ordering.CardHold{}, &portal.Error{Code: portal.EInvalid, Field: "card_number", Message: "declined"}
	}
	// The writer is free: a write transaction with a short deadline gets
	// its turn at once.
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	h.writerFreeAtHolds = append(h.writerFreeAtHolds, h.db.Tx(wctx, func(*sql.Tx) error { return nil }) == nil)
	ref := fmt.Sprint("hold-", len(h.holds)+1)
	h.holds = append(h.holds, ref)
	return ordering.CardHold{Ref: ref, Label: "Visa 4242", Amount: amount}, nil
}
func (h *holdingBilling) RecordCardHold(ctx context.Context, tx *sql.Tx, acct, order int64, hold ordering.CardHold) (string, error) {
	if h.failRecord {
		return "", fmt.Errorf("ledger refused")
	}
	h.recorded = append(h.recorded, order)
	return hold.Ref, nil
}
func (h *holdingBilling) ReleaseCardHold(ctx context.Context, hold ordering.CardHold) error {
	h.released = append(h.released, hold.Ref)
	return nil
}

// A card is authorized at the gateway before the order's transaction (the
// writer is free during the gateway call), the hold becomes the order's
// payment reference, a resubmission does not touch the card again, a
// decline stores nothing, and a hold whose order was not stored is
// released.
func TestCardHeldBeforeTheTransaction(t *testing.T) {
	e := newEnv(t)
	hb := &holdingBilling{db: e.db}
	e.svc.Billing = hb
	ctx := context.Background()
	in := e.input(portal.ProductBusiness, "a@example.com")
	in.PaymentMethod, in.Card = portal.PayCard, ordering.Card{Number: "4242424242424242", Expiry: "12/30", CVC: "123"}
	in.IdempotencyKey = "card-1"
	o, err := e.svc.Submit(ctx, e.user, in)
	if err != nil {
		t.Fatal(err)
	}
	if o.PaymentRef != "hold-1" || len(hb.recorded) != 1 || len(hb.released) != 0 {
		t.Fatalf("payment ref %q, recorded %v, released %v", o.PaymentRef, hb.recorded, hb.released)
	}
	if len(hb.writerFreeAtHolds) != 1 || !hb.writerFreeAtHolds[0] {
		t.Fatalf("the gateway was called while a write transaction was open: %v", hb.writerFreeAtHolds)
	}
	again, err := e.svc.Submit(ctx, e.user, in)
	if err != nil || again.ID != o.ID || len(hb.holds) != 1 {
		t.Fatalf("resubmission: order %d (first %d), %v; holds %v", again.ID, o.ID, err, hb.holds)
	}

	declined := in
	declined.IdempotencyKey, declined.Card.Number = "card-2", "4000000000000002"
	if _, err := e.svc.Submit(ctx, e.user, declined); fieldErr(err, "card_number") == "" {
		t.Fatalf("decline: %v", err)
	}

	hb.failRecord = true
	failing := in
	failing.IdempotencyKey = "card-3"
	if _, err := e.svc.Submit(ctx, e.user, failing); err == nil {
		t.Fatal("an order whose payment could not be booked was accepted")
	}
	if len(hb.released) != 1 || hb.released[0] != hb.holds[len(hb.holds)-1] {
		t.Fatalf("holds %v, released %v: the unbooked hold must be released", hb.holds, hb.released)
	}
	var n int
	e.db.QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d orders stored, want 1", n)
	}
}
