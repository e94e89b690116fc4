// Package billing takes payment for orders: card payments through a
// Gateway (a built-in TestGateway in process), contract terms with a
// limit and per-product prices, and a prepaid account balance. Every
// money movement is a row in the ledger; balances and open reservations
// are computed from it. Amounts are euro cents (int64).
//
// The ordering service calls Quote, DefaultMethod and Authorize at submit,
// Release at cancel; issuance calls Settle for each certificate. All three
// take the caller's *sql.Tx, so the payment rows commit (or roll back)
// with the order change that causes them.
//
// Only a card's brand, last four digits, expiry and the gateway reference
// are ever stored; the number and the CVC stay in memory for the request.
package billing

import (
	"context"
	"database/sql"
	"time"

	"certdesk/internal/portal"
)

// Kind of a ledger row.
type Kind string

const (
	KindAuthorize Kind = "authorize" // card: amount reserved on the card
	KindCapture   Kind = "capture"   // card: amount taken from an authorization
	KindRelease   Kind = "release"   // any method: what was still reserved, let go
	KindCommit    Kind = "commit"    // contract: amount committed against the limit
	KindUsage     Kind = "usage"     // contract: amount used (certificate issued)
	KindHold      Kind = "hold"      // balance: amount held from the balance
	KindDebit     Kind = "debit"     // balance: amount taken from the balance
	KindDeposit   Kind = "deposit"   // balance: funds added (paid by card)
)

// Kinds lists every ledger kind.
var Kinds = []Kind{KindAuthorize, KindCapture, KindRelease, KindCommit, KindUsage, KindHold, KindDebit, KindDeposit}

// LedgerEntry is one row of the ledger.
type LedgerEntry struct {
	ID          int64
	AccountID   int64
	OrderID     int64 // 0 for deposits
	Kind        Kind
	Method      portal.PaymentMethod
	AmountCents int64 // always positive; Kind says which way it goes
	GatewayRef  string
	Detail      string // e.g. "Visa •••• 4242"; never a card number
	CreatedAt   time.Time
}

// Contract is an account's contract terms.
type Contract struct {
	AccountID  int64
	Reference  string // the contract number shown to the customer
	Active     bool
	LimitCents int64
	// Prices per certificate per year, by product. A product without a
	// price here is charged at its list price.
	Prices    map[portal.ProductID]int64
	CreatedAt time.Time
}

// ContractStatus is a contract with its usage.
type ContractStatus struct {
	Contract
	UsedCents      int64 // usage recorded at issuance
	CommittedCents int64 // open commitments of orders not yet issued
	RemainingCents int64 // limit - used - committed
}

// StoredCard is a card on file.
type StoredCard struct {
	AccountID int64
	CardDetails
	GatewayRef string // the gateway's token for the card
	CreatedAt  time.Time
}

// Balance of an account's prepaid funds.
type Balance struct {
	BalanceCents   int64 // deposits - debits
	HeldCents      int64 // held for orders not yet issued
	AvailableCents int64 // balance - held
}

// SumKey groups ledger sums.
type SumKey struct {
	Method portal.PaymentMethod
	Kind   Kind
}

// Querier is a *sql.DB or a *sql.Tx.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Store is what billing needs from the database (store.DB implements it).
// Methods taking a Querier run inside the caller's transaction.
type Store interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	// BillingContract returns the account's contract; ENotFound when none.
	BillingContract(ctx context.Context, q Querier, accountID int64) (Contract, error)
	// SetBillingContract creates or replaces the account's contract and prices.
	SetBillingContract(ctx context.Context, c Contract) error
	// CardOnFile returns the account's card on file; ENotFound when none.
	CardOnFile(ctx context.Context, q Querier, accountID int64) (StoredCard, error)
	// SaveCardOnFile creates or replaces the account's card on file.
	SaveCardOnFile(ctx context.Context, q Querier, c StoredCard) error
	// AddLedgerEntry appends a row; an order of another account is ENotFound.
	AddLedgerEntry(ctx context.Context, q Querier, e LedgerEntry) (int64, error)
	// OrderLedger lists an order's rows, oldest first.
	OrderLedger(ctx context.Context, q Querier, accountID, orderID int64) ([]LedgerEntry, error)
	// LedgerSums sums an account's rows by method and kind.
	LedgerSums(ctx context.Context, q Querier, accountID int64) (map[SumKey]int64, error)
	// LedgerPage lists an account's rows, newest first.
	LedgerPage(ctx context.Context, accountID int64, limit int) ([]LedgerEntry, error)
}

// Service is the billing service.
type Service struct {
	Store   Store
	Gateway Gateway
	Clock   portal.Clock
}

// NewService wires a billing service.
func NewService(st Store, gw Gateway, clock portal.Clock) *Service {
	return &Service{Store: st, Gateway: gw, Clock: clock}
}

// Limits on a single deposit.
const (
	MinDepositCents = 10_00
	MaxDepositCents = 100_000_00
)

func isNotFound(err error) bool { return portal.ErrorCode(err) == portal.ENotFound }

// Years is the number of started years in days: ceil(days/365), at least 1.
func Years(days int) int64 {
	if days <= 0 {
		return 1
	}
	return int64((days + 364) / 365)
}

// PriceList is an account's price per certificate per year by product:
// its active contract's price where the contract has one, else the
// product's list price.
type PriceList struct {
	contract map[portal.ProductID]int64
}

// Quote prices an order from the list: per certificate, the product's
// price times the started years of the period (ceil(days/365)); the total
// is that times the number of recipients (0 for fewer than one).
func (l PriceList) Quote(product portal.Product, recipients, days int) (perCert, total int64) {
	price, ok := l.contract[product.ID]
	if !ok {
		price = product.PriceCents
	}
	perCert = price * Years(days)
	if recipients < 1 {
		return perCert, 0
	}
	return perCert, perCert * int64(recipients)
}

// Prices reads the account's price list (one read of its contract).
func (s *Service) Prices(ctx context.Context, accountID int64) (PriceList, error) {
	c, err := s.Store.BillingContract(ctx, nil, accountID)
	switch {
	case err == nil:
		if c.Active {
			return PriceList{contract: c.Prices}, nil
		}
	case !isNotFound(err):
		return PriceList{}, err
	}
	return PriceList{}, nil
}

// PriceListFor is Prices for showing prices: when the contract cannot be
// read it gives the list prices (an order's Authorize then fails on the
// same database error, so nothing is charged at the wrong price).
func (s *Service) PriceListFor(ctx context.Context, accountID int64) PriceList {
	l, _ := s.Prices(ctx, accountID)
	return l
}

// Quote prices one product for an account (PriceList.Quote).
func (s *Service) Quote(ctx context.Context, accountID int64, product portal.Product, recipients int, days int) (perCert, total int64) {
	return s.PriceListFor(ctx, accountID).Quote(product, recipients, days)
}

// PriceOrder is Quote with the database error returned; fewer than one
// recipient is invalid.
func (s *Service) PriceOrder(ctx context.Context, accountID int64, product portal.Product, recipients int, days int) (perCert, total int64, err error) {
	if recipients < 1 {
		return 0, 0, portal.Errorf(portal.EInvalid, "an order needs at least one recipient")
	}
	l, err := s.Prices(ctx, accountID)
	if err != nil {
		return 0, 0, err
	}
	perCert, total = l.Quote(product, recipients, days)
	return perCert, total, nil
}

// DefaultMethod is the payment method the order form preselects: contract
// terms when the account has an active contract, else card.
func (s *Service) DefaultMethod(ctx context.Context, accountID int64) portal.PaymentMethod {
	c, err := s.Store.BillingContract(ctx, nil, accountID)
	if err == nil && c.Active {
		return portal.PayContract
	}
	return portal.PayCard
}

// Methods lists the payment methods an account can choose, the default first.
func (s *Service) Methods(ctx context.Context, accountID int64) []portal.PaymentMethod {
	if s.DefaultMethod(ctx, accountID) == portal.PayContract {
		return []portal.PaymentMethod{portal.PayContract, portal.PayCard, portal.PayBalance}
	}
	return []portal.PaymentMethod{portal.PayCard, portal.PayBalance}
}

// BalanceCents is the balance available for a new order (deposits -
// debits - open holds), for the order form.
func (s *Service) BalanceCents(ctx context.Context, accountID int64) (int64, error) {
	b, err := s.Balance(ctx, accountID)
	return b.AvailableCents, err
}

// CardOnFileLabel names the usable card on file ("Visa •••• 4242"), or ""
// when there is none or it has expired.
func (s *Service) CardOnFileLabel(ctx context.Context, accountID int64) (string, error) {
	c, err := s.CardOnFile(ctx, accountID)
	if err != nil || c == nil || c.Expired(s.Clock.Now()) {
		return "", err
	}
	return c.Label(), nil
}

// HasContract reports whether the account has an active contract.
func (s *Service) HasContract(ctx context.Context, accountID int64) (bool, error) {
	c, err := s.Store.BillingContract(ctx, nil, accountID)
	if isNotFound(err) {
		return false, nil
	}
	return err == nil && c.Active, err
}

// withTx runs fn in tx, or in a new transaction when tx is nil.
func (s *Service) withTx(ctx context.Context, tx *sql.Tx, fn func(*sql.Tx) error) error {
	if tx != nil {
		return fn(tx)
	}
	return s.Store.Tx(ctx, fn)
}

// contractStatus computes a contract's usage from the ledger sums.
func contractStatus(c Contract, sums map[SumKey]int64) ContractStatus {
	used := sums[SumKey{portal.PayContract, KindUsage}]
	committed := sums[SumKey{portal.PayContract, KindCommit}] - used - sums[SumKey{portal.PayContract, KindRelease}]
	if committed < 0 {
		committed = 0
	}
	return ContractStatus{Contract: c, UsedCents: used, CommittedCents: committed, RemainingCents: c.LimitCents - used - committed}
}

func balanceOf(sums map[SumKey]int64) Balance {
	debits := sums[SumKey{portal.PayBalance, KindDebit}]
	bal := sums[SumKey{portal.PayCard, KindDeposit}] + sums[SumKey{portal.PayBalance, KindDeposit}] - debits
	held := sums[SumKey{portal.PayBalance, KindHold}] - debits - sums[SumKey{portal.PayBalance, KindRelease}]
	if held < 0 {
		held = 0
	}
	return Balance{BalanceCents: bal, HeldCents: held, AvailableCents: bal - held}
}

var errAlreadyAuthorized = &portal.Error{Code: portal.EConflict, Key: "billing.already_authorized",
	Message: "Payment for this order has already been authorized."}

// Authorize reserves payment for an order inside the caller's transaction
// tx (the order row must exist in it):
//   - card: the gateway authorizes amount on card (nil: the card on file);
//     ledger 'authorize' with the gateway reference, which is returned;
//   - contract: the account needs an active contract and used + open
//     commitments + amount must stay within its limit; ledger 'commit';
//   - balance: the available balance (deposits - debits - open holds) must
//     cover amount, else a field error on payment_method with the key
//     billing.balance_too_low; ledger 'hold'.
//
// An order is authorized once; a second call is a conflict. The returned
// reference is empty for contract and balance.
func (s *Service) Authorize(ctx context.Context, tx *sql.Tx, accountID, orderID int64, method portal.PaymentMethod, amount int64, card *CardInput) (ref string, err error) {
	if amount <= 0 {
		return "", portal.Errorf(portal.EInvalid, "the amount must be positive")
	}
	if orderID == 0 {
		return "", portal.Errorf(portal.EInvalid, "an authorization needs an order")
	}
	err = s.withTx(ctx, tx, func(tx *sql.Tx) error {
		rows, err := s.Store.OrderLedger(ctx, tx, accountID, orderID)
		if err != nil {
			return err
		}
		if _, ok := openingRow(rows); ok {
			return errAlreadyAuthorized
		}
		e := LedgerEntry{AccountID: accountID, OrderID: orderID, Method: method, AmountCents: amount}
		switch method {
		case portal.PayCard:
			src, details, err := s.cardSource(ctx, tx, accountID, card)
			if err != nil {
				return err
			}
			if ref, err = s.Gateway.Authorize(ctx, amount, src); err != nil {
				return err
			}
			e.Kind, e.GatewayRef, e.Detail = KindAuthorize, ref, details.Label()
		case portal.PayContract:
			c, err := s.Store.BillingContract(ctx, tx, accountID)
			if isNotFound(err) || (err == nil && !c.Active) {
				return &portal.Error{Code: portal.EInvalid, Field: FieldMethod, Key: "billing.no_contract",
					Message: "Your account has no active contract. Choose another payment method."}
			}
			if err != nil {
				return err
			}
			sums, err := s.Store.LedgerSums(ctx, tx, accountID)
			if err != nil {
				return err
			}
			st := contractStatus(c, sums)
			if amount > st.RemainingCents {
				rem := max(st.RemainingCents, 0)
				return &portal.Error{Code: portal.EInvalid, Field: FieldMethod, Key: "billing.contract_limit",
					Data:    map[string]any{"Remaining": FormatEuro(rem), "Limit": FormatEuro(c.LimitCents), "Amount": FormatEuro(amount)},
					Message: "This order (" + FormatEuro(amount) + ") exceeds what remains of your contract limit (" + FormatEuro(rem) + " of " + FormatEuro(c.LimitCents) + "). Choose another payment method."}
			}
			e.Kind, e.Detail = KindCommit, c.Reference
		case portal.PayBalance:
			sums, err := s.Store.LedgerSums(ctx, tx, accountID)
			if err != nil {
				return err
			}
			b := balanceOf(sums)
			if b.AvailableCents < amount {
				return BalanceTooLow(b.AvailableCents, amount)
			}
			e.Kind = KindHold
		default:
			return portal.FieldError(FieldMethod, "billing.method_invalid", "Choose a payment method.")
		}
		_, err = s.Store.AddLedgerEntry(ctx, tx, e)
		return err
	})
	if err != nil {
		return "", err
	}
	return ref, nil
}

// CardHold is a card authorization made at the gateway BEFORE the order's
// database transaction (HoldCard), so that a gateway's answer time (a real
// PSP: hundreds of milliseconds) is never spent holding the single
// database writer, which concurrent order submissions share (group
// commit). RecordCardHold books it in the transaction; ReleaseCardHold
// lets it go when that transaction did not commit.
type CardHold struct {
	Ref    string // gateway reference
	Label  string // brand and last four digits, for the ledger
	Amount int64
}

// HoldCard checks the card (entered or on file) and authorizes amount at
// the gateway, outside any transaction. A decline is a field error.
func (s *Service) HoldCard(ctx context.Context, accountID, amount int64, card *CardInput) (CardHold, error) {
	if amount <= 0 {
		return CardHold{}, portal.Errorf(portal.EInvalid, "the amount must be positive")
	}
	src, details, err := s.cardSource(ctx, nil, accountID, card)
	if err != nil {
		return CardHold{}, err
	}
	ref, err := s.Gateway.Authorize(ctx, amount, src)
	if err != nil {
		return CardHold{}, err
	}
	return CardHold{Ref: ref, Label: details.Label(), Amount: amount}, nil
}

// RecordCardHold books a hold made by HoldCard as the order's
// authorization, inside tx (the same ledger row Authorize writes).
func (s *Service) RecordCardHold(ctx context.Context, tx *sql.Tx, accountID, orderID int64, h CardHold) (string, error) {
	if orderID == 0 {
		return "", portal.Errorf(portal.EInvalid, "an authorization needs an order")
	}
	err := s.withTx(ctx, tx, func(tx *sql.Tx) error {
		rows, err := s.Store.OrderLedger(ctx, tx, accountID, orderID)
		if err != nil {
			return err
		}
		if _, ok := openingRow(rows); ok {
			return errAlreadyAuthorized
		}
		_, err = s.Store.AddLedgerEntry(ctx, tx, LedgerEntry{AccountID: accountID, OrderID: orderID, Method: portal.PayCard,
			Kind: KindAuthorize, AmountCents: h.Amount, GatewayRef: h.Ref, Detail: h.Label})
		return err
	})
	if err != nil {
		return "", err
	}
	return h.Ref, nil
}

// ReleaseCardHold releases a hold whose order was not stored.
func (s *Service) ReleaseCardHold(ctx context.Context, h CardHold) error {
	return s.Gateway.Release(ctx, h.Ref)
}

// BalanceTooLow is the error for a balance that does not cover an order.
func BalanceTooLow(available, amount int64) *portal.Error {
	bal := FormatEuro(max(available, 0))
	amt := FormatEuro(amount)
	return &portal.Error{Code: portal.EInvalid, Field: FieldMethod, Key: "billing.balance_too_low",
		Data:    map[string]any{"Balance": bal, "Amount": amt},
		Message: "Your account balance (" + bal + ") is too low for this order (" + amt + "). Deposit funds or choose another payment method."}
}

// cardSource picks a typed card (validated) or the card on file.
func (s *Service) cardSource(ctx context.Context, q Querier, accountID int64, card *CardInput) (Source, CardDetails, error) {
	if card != nil {
		d, err := ValidateCard(*card, s.Clock.Now())
		if err != nil {
			return Source{}, d, err
		}
		return Source{Card: card}, d, nil
	}
	sc, err := s.Store.CardOnFile(ctx, q, accountID)
	if isNotFound(err) {
		return Source{}, CardDetails{}, &portal.Error{Code: portal.EInvalid, Field: FieldMethod, Key: "billing.no_card_on_file",
			Message: "There is no card on file. Enter card details."}
	}
	if err != nil {
		return Source{}, CardDetails{}, err
	}
	if sc.Expired(s.Clock.Now()) {
		return Source{}, CardDetails{}, &portal.Error{Code: portal.EInvalid, Field: FieldMethod, Key: "billing.card_on_file_expired",
			Message: "The card on file has expired. Enter card details or replace the card on the account page."}
	}
	return Source{Token: sc.GatewayRef}, sc.CardDetails, nil
}

// openingRow finds the row that opened an order's payment.
func openingRow(rows []LedgerEntry) (LedgerEntry, bool) {
	for _, r := range rows {
		switch r.Kind {
		case KindAuthorize, KindCommit, KindHold:
			return r, true
		}
	}
	return LedgerEntry{}, false
}

// OrderPayment is the state of an order's payment, from the ledger.
type OrderPayment struct {
	Method     portal.PaymentMethod
	Authorized int64 // authorized, committed or held
	Settled    int64 // captured, used or debited
	Released   int64
	Open       int64 // still reserved: Authorized - Settled - Released
	GatewayRef string
}

// orderPayment computes an order's payment state.
func orderPayment(rows []LedgerEntry) (OrderPayment, bool) {
	first, ok := openingRow(rows)
	if !ok {
		return OrderPayment{}, false
	}
	p := OrderPayment{Method: first.Method, GatewayRef: first.GatewayRef}
	for _, r := range rows {
		if r.Method != first.Method {
			continue
		}
		switch r.Kind {
		case KindAuthorize, KindCommit, KindHold:
			p.Authorized += r.AmountCents
		case KindCapture, KindUsage, KindDebit:
			p.Settled += r.AmountCents
		case KindRelease:
			p.Released += r.AmountCents
		}
	}
	p.Open = p.Authorized - p.Settled - p.Released
	return p, true
}

// OrderPayment returns the payment state of an order (q may be nil for
// the database, or the caller's transaction). ENotFound when the order
// has no payment.
func (s *Service) OrderPayment(ctx context.Context, q Querier, accountID, orderID int64) (OrderPayment, error) {
	rows, err := s.Store.OrderLedger(ctx, q, accountID, orderID)
	if err != nil {
		return OrderPayment{}, err
	}
	p, ok := orderPayment(rows)
	if !ok {
		return p, portal.Errorf(portal.ENotFound, "no payment for this order")
	}
	return p, nil
}

// Settle takes payment for one issued certificate of an order, inside
// the caller's transaction: card -> gateway capture of amount from the
// authorization (partial captures allowed), ledger 'capture'; contract ->
// ledger 'usage'; balance -> ledger 'debit'. amount may not exceed what
// the order still has reserved (a conflict otherwise). An amount of 0
// does nothing.
func (s *Service) Settle(ctx context.Context, tx *sql.Tx, accountID, orderID int64, amount int64) error {
	if amount == 0 {
		return nil
	}
	if amount < 0 {
		return portal.Errorf(portal.EInvalid, "the amount must be positive")
	}
	return s.withTx(ctx, tx, func(tx *sql.Tx) error {
		rows, err := s.Store.OrderLedger(ctx, tx, accountID, orderID)
		if err != nil {
			return err
		}
		p, ok := orderPayment(rows)
		if !ok {
			return portal.Errorf(portal.EConflict, "no payment was authorized for order %d", orderID)
		}
		if amount > p.Open {
			return portal.Errorf(portal.EConflict, "settling %s exceeds the %s still reserved for order %d",
				FormatEuro(amount), FormatEuro(p.Open), orderID)
		}
		e := LedgerEntry{AccountID: accountID, OrderID: orderID, Method: p.Method, AmountCents: amount}
		switch p.Method {
		case portal.PayCard:
			if err := s.Gateway.Capture(ctx, p.GatewayRef, amount); err != nil {
				return err
			}
			e.Kind, e.GatewayRef, e.Detail = KindCapture, p.GatewayRef, first(rows).Detail
		case portal.PayContract:
			e.Kind, e.Detail = KindUsage, first(rows).Detail
		case portal.PayBalance:
			e.Kind = KindDebit
		default:
			return portal.Errorf(portal.EInternal, "unknown payment method %q", p.Method)
		}
		_, err = s.Store.AddLedgerEntry(ctx, tx, e)
		return err
	})
}

func first(rows []LedgerEntry) LedgerEntry { r, _ := openingRow(rows); return r }

// Release lets go of what an order still has reserved (at cancel), inside
// the caller's transaction: the card authorization's remainder (gateway
// release), the contract commitment or the balance hold, each with a
// ledger 'release' row. Nothing open: nothing happens, so calling it
// twice is safe.
func (s *Service) Release(ctx context.Context, tx *sql.Tx, accountID, orderID int64) error {
	return s.withTx(ctx, tx, func(tx *sql.Tx) error {
		rows, err := s.Store.OrderLedger(ctx, tx, accountID, orderID)
		if err != nil {
			return err
		}
		p, ok := orderPayment(rows)
		if !ok || p.Open <= 0 {
			return nil
		}
		if p.Method == portal.PayCard {
			if err := s.Gateway.Release(ctx, p.GatewayRef); err != nil {
				return err
			}
		}
		_, err = s.Store.AddLedgerEntry(ctx, tx, LedgerEntry{AccountID: accountID, OrderID: orderID, Kind: KindRelease,
			Method: p.Method, AmountCents: p.Open, GatewayRef: p.GatewayRef, Detail: first(rows).Detail})
		return err
	})
}

// Deposit adds amount to the account balance, paid by card (nil: the card
// on file), with a ledger 'deposit' row. Amount errors are on the field
// "amount", card errors on the card fields.
func (s *Service) Deposit(ctx context.Context, accountID int64, amount int64, card *CardInput) (LedgerEntry, error) {
	if err := CheckDepositAmount(amount); err != nil {
		return LedgerEntry{}, err
	}
	var e LedgerEntry
	err := s.Store.Tx(ctx, func(tx *sql.Tx) error {
		src, d, err := s.cardSource(ctx, tx, accountID, card)
		if err != nil {
			return err
		}
		ref, err := s.Gateway.Charge(ctx, amount, src)
		if err != nil {
			return err
		}
		e = LedgerEntry{AccountID: accountID, Kind: KindDeposit, Method: portal.PayCard, AmountCents: amount,
			GatewayRef: ref, Detail: d.Label(), CreatedAt: s.Clock.Now()}
		e.ID, err = s.Store.AddLedgerEntry(ctx, tx, e)
		return err
	})
	return e, err
}

// CheckDepositAmount checks a deposit amount against the limits.
func CheckDepositAmount(amount int64) error {
	if amount < MinDepositCents || amount > MaxDepositCents {
		return &portal.Error{Code: portal.EInvalid, Field: FieldAmount, Key: "billing.deposit_amount_range",
			Data:    map[string]any{"Min": FormatEuro(MinDepositCents), "Max": FormatEuro(MaxDepositCents)},
			Message: "Enter an amount between " + FormatEuro(MinDepositCents) + " and " + FormatEuro(MaxDepositCents) + "."}
	}
	return nil
}

// Balance returns an account's balance, holds and available funds.
func (s *Service) Balance(ctx context.Context, accountID int64) (Balance, error) {
	sums, err := s.Store.LedgerSums(ctx, nil, accountID)
	if err != nil {
		return Balance{}, err
	}
	return balanceOf(sums), nil
}

// Ledger returns an account's newest ledger rows first (limit <= 0: 100).
func (s *Service) Ledger(ctx context.Context, accountID int64, limit int) ([]LedgerEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.Store.LedgerPage(ctx, accountID, limit)
}

// Contract returns the account's contract with its usage, nil when the
// account has none.
func (s *Service) Contract(ctx context.Context, accountID int64) (*ContractStatus, error) {
	c, err := s.Store.BillingContract(ctx, nil, accountID)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sums, err := s.Store.LedgerSums(ctx, nil, accountID)
	if err != nil {
		return nil, err
	}
	st := contractStatus(c, sums)
	return &st, nil
}

// SetContract creates or replaces an account's contract (CA staff or the
// dev seed). The limit may not be negative, nor a price.
func (s *Service) SetContract(ctx context.Context, c Contract) error {
	if c.LimitCents < 0 {
		return portal.FieldError("limit", "billing.contract_limit_negative", "The limit cannot be negative.")
	}
	for id, p := range c.Prices {
		if _, ok := portal.ProductByID(id); !ok || p < 0 {
			return portal.Errorf(portal.EInvalid, "invalid contract price for %q", id)
		}
	}
	return s.Store.SetBillingContract(ctx, c)
}

// CardOnFile returns the account's card on file, nil when none.
func (s *Service) CardOnFile(ctx context.Context, accountID int64) (*StoredCard, error) {
	c, err := s.Store.CardOnFile(ctx, nil, accountID)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// SaveCard verifies a card with the gateway and keeps it on file for the
// account (replacing any previous one): brand, last four, expiry and the
// gateway's token only.
func (s *Service) SaveCard(ctx context.Context, accountID int64, card CardInput) (StoredCard, error) {
	if _, err := ValidateCard(card, s.Clock.Now()); err != nil {
		return StoredCard{}, err
	}
	d, tok, err := s.Gateway.Tokenize(ctx, card)
	if err != nil {
		return StoredCard{}, err
	}
	sc := StoredCard{AccountID: accountID, CardDetails: d, GatewayRef: tok, CreatedAt: s.Clock.Now()}
	if err := s.Store.SaveCardOnFile(ctx, nil, sc); err != nil {
		return StoredCard{}, err
	}
	return sc, nil
}
