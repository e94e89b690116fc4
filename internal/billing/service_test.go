package billing_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"certdesk/internal/billing"
	"certdesk/internal/portal"
	"certdesk/store"
)

type env struct {
	t     *testing.T
	db    *store.DB
	path  string
	clock *portal.FixedClock
	gw    *billing.TestGateway
	svc   *billing.Service
	acct  int64
	user  int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := portal.NewFixedClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "b.db")
	db, err := store.Open(context.Background(), path, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	gw := billing.NewTestGateway(clock)
	e := &env{t: t, db: db, path: path, clock: clock, gw: gw, svc: billing.NewService(db, gw, clock)}
	e.acct, e.user = e.account("Example Corp")
	return e
}

func (e *env) account(name string) (int64, int64) {
	e.t.Helper()
	ctx := context.Background()
	a, err := e.db.CreateAccount(ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.db.CreateUser(ctx, portal.User{AccountID: a.ID, Email: strings.ReplaceAll(strings.ToLower(name), " ", "") + "@example.com",
		Name: "Admin", Role: portal.RoleAccountAdmin, PasswordHash: "x"})
	if err != nil {
		e.t.Fatal(err)
	}
	return a.ID, u.ID
}

// order inserts a minimal order row for the account inside tx.
func (e *env) order(tx *sql.Tx, acct, user int64, amount int64) int64 {
	e.t.Helper()
	now := "2026-11-25T12:00:00.000000000Z"
	res, err := tx.Exec(`INSERT INTO orders(account_id, user_id, product_id, signature_hash, period_start, period_end, payment_method,
		amount_cents, agreement_version, agreed_at, created_at) VALUES (?, ?, 'secure_email_mailbox', 'sha256', ?, ?, 'card', ?, 'v1', ?, ?)`,
		acct, user, now, now, amount, now, now)
	if err != nil {
		e.t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	return id
}

// authorize submits an order and authorizes payment in one transaction,
// as the ordering service does.
func (e *env) authorize(method portal.PaymentMethod, amount int64, card *billing.CardInput) (int64, string, error) {
	e.t.Helper()
	var id int64
	var ref string
	err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		id = e.order(tx, e.acct, e.user, amount)
		var err error
		ref, err = e.svc.Authorize(context.Background(), tx, e.acct, id, method, amount, card)
		return err
	})
	return id, ref, err
}

func (e *env) settle(orderID, amount int64) error {
	return e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		return e.svc.Settle(context.Background(), tx, e.acct, orderID, amount)
	})
}

func (e *env) release(orderID int64) error {
	return e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		return e.svc.Release(context.Background(), tx, e.acct, orderID)
	})
}

func (e *env) kinds(orderID int64) string {
	e.t.Helper()
	rows, err := e.db.OrderLedger(context.Background(), nil, e.acct, orderID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, string(r.Kind)+":"+string(r.Method)+":"+itoa(r.AmountCents))
	}
	return strings.Join(out, " ")
}

func itoa(v int64) string { return billing.FormatEuro(v) }

func card(n string) *billing.CardInput {
	return &billing.CardInput{Number: n, Expiry: "12/28", CVC: "123", Name: "Alex Admin"}
}

func TestQuoteWithAndWithoutContract(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	biz, _ := portal.ProductByID(portal.ProductBusiness) // 49.00 per year
	ind, _ := portal.ProductByID(portal.ProductIndividual)
	per, total, err := e.svc.PriceOrder(ctx, e.acct, biz, 3, 730)
	if err != nil || per != 2*4900 || total != 3*2*4900 {
		t.Fatalf("list price: per %d total %d err %v", per, total, err)
	}
	if per, _ := e.svc.Quote(ctx, e.acct, biz, 1, 366); per != 2*4900 {
		t.Fatalf("366 days is two started years: %d", per)
	}
	if m := e.svc.DefaultMethod(ctx, e.acct); m != portal.PayCard {
		t.Fatalf("default without contract: %s", m)
	}
	if err := e.svc.SetContract(ctx, billing.Contract{AccountID: e.acct, Reference: "C-1", Active: true, LimitCents: 100000,
		Prices: map[portal.ProductID]int64{portal.ProductBusiness: 3000}}); err != nil {
		t.Fatal(err)
	}
	per, total = e.svc.Quote(ctx, e.acct, biz, 3, 365)
	if per != 3000 || total != 9000 {
		t.Fatalf("contract price: per %d total %d", per, total)
	}
	// a product the contract does not price stays at list price
	if per, _ := e.svc.Quote(ctx, e.acct, ind, 1, 365); per != ind.PriceCents {
		t.Fatalf("unpriced product: %d", per)
	}
	if m := e.svc.DefaultMethod(ctx, e.acct); m != portal.PayContract {
		t.Fatalf("default with contract: %s", m)
	}
	if ok, err := e.svc.HasContract(ctx, e.acct); !ok || err != nil {
		t.Fatalf("HasContract: %v %v", ok, err)
	}
	// another account is not affected by this contract
	other, _ := e.account("Other BV")
	if per, _ := e.svc.Quote(ctx, other, biz, 1, 365); per != 4900 {
		t.Fatalf("other account got the contract price: %d", per)
	}
	// an inactive contract neither prices nor is the default
	if err := e.svc.SetContract(ctx, billing.Contract{AccountID: e.acct, Active: false, LimitCents: 100000,
		Prices: map[portal.ProductID]int64{portal.ProductBusiness: 3000}}); err != nil {
		t.Fatal(err)
	}
	if per, _ := e.svc.Quote(ctx, e.acct, biz, 1, 365); per != 4900 || e.svc.DefaultMethod(ctx, e.acct) != portal.PayCard {
		t.Fatalf("inactive contract still used: %d", per)
	}
	if _, _, err := e.svc.PriceOrder(ctx, e.acct, biz, 0, 365); portal.ErrorCode(err) != portal.EInvalid {
		t.Fatalf("zero recipients: %v", err)
	}
}

func TestCardAuthorizeCaptureRelease(t *testing.T) {
	e := newEnv(t)
	id, ref, err := e.authorize(portal.PayCard, 9800, card(billing.TestCardVisa))
	if err != nil || !strings.HasPrefix(ref, "tgauth_") {
		t.Fatalf("authorize: %q %v", ref, err)
	}
	// two recipients at 49.00: one issued, then the order is cancelled
	if err := e.settle(id, 4900); err != nil {
		t.Fatal(err)
	}
	if err := e.settle(id, 5000); portal.ErrorCode(err) != portal.EConflict {
		t.Fatalf("capturing beyond the authorization: %v", err)
	}
	if err := e.release(id); err != nil {
		t.Fatal(err)
	}
	if err := e.release(id); err != nil { // twice is harmless
		t.Fatal(err)
	}
	if got, want := e.kinds(id), "authorize:card:€98.00 capture:card:€49.00 release:card:€49.00"; got != want {
		t.Fatalf("ledger %q, want %q", got, want)
	}
	p, err := e.svc.OrderPayment(context.Background(), nil, e.acct, id)
	if err != nil || p.Open != 0 || p.Settled != 4900 || p.Released != 4900 || p.GatewayRef != ref {
		t.Fatalf("payment %+v %v", p, err)
	}
	ops := strings.Join(e.gw.Ops(), "\n")
	for _, want := range []string{"authorize " + ref + " 9800", "capture " + ref + " 4900", "release " + ref} {
		if !strings.Contains(ops, want) {
			t.Errorf("gateway did not see %q:\n%s", want, ops)
		}
	}
	if strings.Count(ops, "release") != 1 {
		t.Errorf("released twice at the gateway:\n%s", ops)
	}
	// the ledger row names the card by brand and last four only
	rows, _ := e.svc.Ledger(context.Background(), e.acct, 10)
	if len(rows) != 3 || rows[0].Kind != billing.KindRelease || rows[2].Detail != "Visa •••• 4242" {
		t.Fatalf("ledger page: %+v", rows)
	}
}

func TestDeclinesLeaveNoTrace(t *testing.T) {
	e := newEnv(t)
	for n, key := range map[string]string{billing.TestCardDeclined: "billing.card_declined", billing.TestCardInsufficientFunds: "billing.insufficient_funds"} {
		_, _, err := e.authorize(portal.PayCard, 2900, card(n))
		pe := portal.AsFieldErrors(err)
		if len(pe) != 1 || pe[0].Key != key || pe[0].Field != billing.FieldCardNumber || portal.ErrorCode(err) != portal.EInvalid {
			t.Fatalf("%s: %v", n, err)
		}
	}
	if rows, _ := e.svc.Ledger(context.Background(), e.acct, 10); len(rows) != 0 {
		t.Fatalf("declined payments left ledger rows: %+v", rows)
	}
	// a card with a bad Luhn digit never reaches the gateway
	before := len(e.gw.Ops())
	if _, _, err := e.authorize(portal.PayCard, 2900, card("4242424242424241")); fieldKey(err, billing.FieldCardNumber) != "billing.card_number_invalid" {
		t.Fatalf("luhn: %v", err)
	}
	if len(e.gw.Ops()) != before {
		t.Fatal("invalid card sent to the gateway")
	}
}

func fieldKey(err error, field string) string {
	for _, fe := range portal.AsFieldErrors(err) {
		if fe.Field == field {
			return fe.Key
		}
	}
	return ""
}

func TestCardOnFile(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, _, err := e.authorize(portal.PayCard, 2900, nil); fieldKey(err, billing.FieldMethod) != "billing.no_card_on_file" {
		t.Fatalf("no card on file: %v", err)
	}
	if _, err := e.svc.SaveCard(ctx, e.acct, *card(billing.TestCardDeclined)); fieldKey(err, billing.FieldCardNumber) != "billing.card_declined" {
		t.Fatalf("declined card saved: %v", err)
	}
	sc, err := e.svc.SaveCard(ctx, e.acct, *card(billing.TestCardMastercard))
	if err != nil || sc.Brand != billing.BrandMastercard || sc.Last4 != "4444" || sc.ExpMonth != 12 || sc.ExpYear != 2028 {
		t.Fatalf("save: %+v %v", sc, err)
	}
	got, err := e.svc.CardOnFile(ctx, e.acct)
	if err != nil || got == nil || got.GatewayRef != sc.GatewayRef || got.Label() != "Mastercard •••• 4444" {
		t.Fatalf("card on file: %+v %v", got, err)
	}
	id, ref, err := e.authorize(portal.PayCard, 2900, nil)
	if err != nil || ref == "" {
		t.Fatalf("authorize with card on file: %v", err)
	}
	if err := e.settle(id, 2900); err != nil {
		t.Fatal(err)
	}
	if l, err := e.svc.CardOnFileLabel(ctx, e.acct); l != "Mastercard •••• 4444" || err != nil {
		t.Fatalf("label %q %v", l, err)
	}
	// the card on file expires: it is no longer offered nor used
	e.clock.Set(time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC))
	if l, _ := e.svc.CardOnFileLabel(ctx, e.acct); l != "" {
		t.Fatalf("expired card offered: %q", l)
	}
	if _, _, err := e.authorize(portal.PayCard, 2900, nil); fieldKey(err, billing.FieldMethod) != "billing.card_on_file_expired" {
		t.Fatalf("expired card on file: %v", err)
	}
	// a card that verifies but has no funds is refused when money is taken
	e.clock.Set(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	if _, err := e.svc.SaveCard(ctx, e.acct, *card(billing.TestCardInsufficientFunds)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Deposit(ctx, e.acct, 5000, nil); fieldKey(err, billing.FieldCardNumber) != "billing.insufficient_funds" {
		t.Fatalf("nsf card on file: %v", err)
	}
}

func TestContractLimit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, _, err := e.authorize(portal.PayContract, 1000, nil); fieldKey(err, billing.FieldMethod) != "billing.no_contract" {
		t.Fatalf("no contract: %v", err)
	}
	if err := e.svc.SetContract(ctx, billing.Contract{AccountID: e.acct, Reference: "C-42", Active: true, LimitCents: 10000}); err != nil {
		t.Fatal(err)
	}
	a, _, err := e.authorize(portal.PayContract, 6000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.settle(a, 2000); err != nil { // one of three certificates issued
		t.Fatal(err)
	}
	// used 20 + committed 40 + 50 > 100
	_, _, err = e.authorize(portal.PayContract, 5000, nil)
	var pe *portal.Error
	if fieldKey(err, billing.FieldMethod) != "billing.contract_limit" || !strings.Contains(portal.ErrorMessage(err), "€40.00") {
		t.Fatalf("over the limit: %v (%v)", err, pe)
	}
	// exactly up to the limit is fine
	b, _, err := e.authorize(portal.PayContract, 4000, nil)
	if err != nil {
		t.Fatalf("up to the limit: %v", err)
	}
	st, _ := e.svc.Contract(ctx, e.acct)
	if st.UsedCents != 2000 || st.CommittedCents != 8000 || st.RemainingCents != 0 || st.Reference != "C-42" {
		t.Fatalf("status %+v", st)
	}
	// cancelling the first order frees its commitment
	if err := e.release(a); err != nil {
		t.Fatal(err)
	}
	st, _ = e.svc.Contract(ctx, e.acct)
	if st.UsedCents != 2000 || st.CommittedCents != 4000 || st.RemainingCents != 4000 {
		t.Fatalf("after release %+v", st)
	}
	if got, want := e.kinds(a), "commit:contract:€60.00 usage:contract:€20.00 release:contract:€40.00"; got != want {
		t.Fatalf("ledger %q", got)
	}
	if got := e.kinds(b); got != "commit:contract:€40.00" {
		t.Fatalf("ledger b %q", got)
	}
}

func TestBalanceTooLowThenDepositHoldDebitRelease(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, _, err := e.authorize(portal.PayBalance, 4900, nil)
	var pe *portal.Error
	if fe := portal.AsFieldErrors(err); len(fe) == 1 {
		pe = fe[0]
	}
	want := "Your account balance (€0.00) is too low for this order (€49.00). Deposit funds or choose another payment method."
	if pe == nil || pe.Code != portal.EInvalid || pe.Field != "payment_method" || pe.Key != "billing.balance_too_low" || pe.Message != want {
		t.Fatalf("too low: %#v", err)
	}
	if _, err := e.svc.Deposit(ctx, e.acct, 500, card(billing.TestCardVisa)); fieldKey(err, billing.FieldAmount) != "billing.deposit_amount_range" {
		t.Fatalf("deposit below the minimum: %v", err)
	}
	if _, err := e.svc.Deposit(ctx, e.acct, 10000, card(billing.TestCardDeclined)); fieldKey(err, billing.FieldCardNumber) != "billing.card_declined" {
		t.Fatalf("declined deposit: %v", err)
	}
	if _, err := e.svc.Deposit(ctx, e.acct, 10000, card(billing.TestCardVisa)); err != nil {
		t.Fatal(err)
	}
	a, _, err := e.authorize(portal.PayBalance, 9800, nil) // two certificates
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.svc.Balance(ctx, e.acct)
	if b != (billing.Balance{BalanceCents: 10000, HeldCents: 9800, AvailableCents: 200}) {
		t.Fatalf("after hold: %+v", b)
	}
	if avail, _ := e.svc.BalanceCents(ctx, e.acct); avail != 200 {
		t.Fatalf("BalanceCents = %d, want the available 200", avail)
	}
	// the hold counts: a second order does not fit
	if _, _, err := e.authorize(portal.PayBalance, 4900, nil); !strings.Contains(portal.ErrorMessage(err), "(€2.00)") {
		t.Fatalf("second order against held funds: %v", err)
	}
	if err := e.settle(a, 4900); err != nil {
		t.Fatal(err)
	}
	b, _ = e.svc.Balance(ctx, e.acct)
	if b != (billing.Balance{BalanceCents: 5100, HeldCents: 4900, AvailableCents: 200}) {
		t.Fatalf("after debit: %+v", b)
	}
	if err := e.release(a); err != nil {
		t.Fatal(err)
	}
	b, _ = e.svc.Balance(ctx, e.acct)
	if b != (billing.Balance{BalanceCents: 5100, HeldCents: 0, AvailableCents: 5100}) {
		t.Fatalf("after release: %+v", b)
	}
	if got := e.kinds(a); got != "hold:balance:€98.00 debit:balance:€49.00 release:balance:€49.00" {
		t.Fatalf("ledger %q", got)
	}
	rows, _ := e.svc.Ledger(ctx, e.acct, 0)
	if len(rows) != 4 || rows[3].Kind != billing.KindDeposit || rows[3].OrderID != 0 || rows[3].GatewayRef == "" {
		t.Fatalf("account ledger %+v", rows)
	}
}

func TestAuthorizeRollsBackWithTheOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.Deposit(ctx, e.acct, 10000, card(billing.TestCardVisa)); err != nil {
		t.Fatal(err)
	}
	// the order's transaction fails after the hold: no hold remains
	_ = e.db.Tx(ctx, func(tx *sql.Tx) error {
		id := e.order(tx, e.acct, e.user, 4900)
		if _, err := e.svc.Authorize(ctx, tx, e.acct, id, portal.PayBalance, 4900, nil); err != nil {
			t.Fatal(err)
		}
		return portal.Errorf(portal.EInvalid, "something else failed")
	})
	if b, _ := e.svc.Balance(ctx, e.acct); b.AvailableCents != 10000 {
		t.Fatalf("rolled-back hold still counts: %+v", b)
	}
	// an order is authorized once
	id, _, err := e.authorize(portal.PayBalance, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = e.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := e.svc.Authorize(ctx, tx, e.acct, id, portal.PayBalance, 1000, nil)
		return err
	})
	if portal.ErrorCode(err) != portal.EConflict {
		t.Fatalf("second authorization: %v", err)
	}
	// settle without an authorization
	if err := e.settle(999, 100); portal.ErrorCode(err) != portal.EConflict {
		t.Fatalf("settle of an unknown order: %v", err)
	}
}

func TestOtherAccountsOrderRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	otherAcct, otherUser := e.account("Other BV")
	var otherOrder int64
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { otherOrder = e.order(tx, otherAcct, otherUser, 100); return nil }); err != nil {
		t.Fatal(err)
	}
	err := e.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := e.svc.Authorize(ctx, tx, e.acct, otherOrder, portal.PayCard, 2900, card(billing.TestCardVisa))
		return err
	})
	if portal.ErrorCode(err) != portal.ENotFound {
		t.Fatalf("booking against another account's order: %v", err)
	}
}

// The card number and CVC never reach the database: scan the database
// files' bytes (main file and WAL) after every kind of card use.
func TestPANNeverInDatabase(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cvc := "731"
	c := &billing.CardInput{Number: "5555 5555 5555 4444", Expiry: "12/28", CVC: cvc, Name: "Alex Admin"}
	visa := &billing.CardInput{Number: billing.TestCardVisa, Expiry: "12/28", CVC: cvc, Name: "Alex Admin"}
	if _, err := e.svc.SaveCard(ctx, e.acct, *visa); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Deposit(ctx, e.acct, 5000, c); err != nil {
		t.Fatal(err)
	}
	id, _, err := e.authorize(portal.PayCard, 2900, visa)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.settle(id, 2900); err != nil {
		t.Fatal(err)
	}
	// the declined number is not kept either
	_, _, _ = e.authorize(portal.PayCard, 2900, card(billing.TestCardDeclined))
	if _, err := e.db.Exec(`PRAGMA wal_checkpoint(FULL)`); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(e.path + suffix)
		if err == nil {
			all = append(all, b...)
		}
	}
	if len(all) == 0 {
		t.Fatal("no database bytes read")
	}
	for _, pan := range []string{billing.TestCardVisa, "5555555555554444", "5555 5555 5555 4444", billing.TestCardDeclined, "424242424242"} {
		if bytes.Contains(all, []byte(pan)) {
			t.Errorf("card number %s found in the database file", pan)
		}
	}
	// the last four are there (so the test reads the right bytes)
	if !bytes.Contains(all, []byte("Visa •••• 4242")) {
		t.Error("expected the card label in the database")
	}
}

// A card hold made before the order's transaction (HoldCard) is booked as
// the order's authorization (the same ledger row Authorize writes, then
// captured as usual), a declined card leaves nothing, and a hold whose
// order was not stored is released at the gateway.
func TestCardHoldOutsideTheTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.HoldCard(ctx, e.acct, 9800, card(billing.TestCardDeclined)); portal.ErrorCode(err) != portal.EInvalid {
		t.Fatalf("declined card: %v", err)
	}
	h, err := e.svc.HoldCard(ctx, e.acct, 9800, card(billing.TestCardVisa))
	if err != nil || !strings.HasPrefix(h.Ref, "tgauth_") || h.Label != "Visa •••• 4242" {
		t.Fatalf("hold: %+v %v", h, err)
	}
	var id int64
	err = e.db.Tx(ctx, func(tx *sql.Tx) error {
		id = e.order(tx, e.acct, e.user, 9800)
		ref, err := e.svc.RecordCardHold(ctx, tx, e.acct, id, h)
		if err == nil && ref != h.Ref {
			t.Errorf("ref %q, want %q", ref, h.Ref)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.settle(id, 4900); err != nil {
		t.Fatal(err)
	}
	if got, want := e.kinds(id), "authorize:card:€98.00 capture:card:€49.00"; got != want {
		t.Fatalf("ledger %q, want %q", got, want)
	}
	lost, err := e.svc.HoldCard(ctx, e.acct, 4900, card(billing.TestCardVisa))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ReleaseCardHold(ctx, lost); err != nil {
		t.Fatal(err)
	}
	ops := strings.Join(e.gw.Ops(), "\n")
	for _, want := range []string{"authorize " + h.Ref + " 9800", "capture " + h.Ref + " 4900", "release " + lost.Ref} {
		if !strings.Contains(ops, want) {
			t.Errorf("gateway did not see %q:\n%s", want, ops)
		}
	}
}
