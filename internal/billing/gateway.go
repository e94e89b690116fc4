package billing

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"certdesk/internal/portal"
)

// Source is what a gateway charges: a card typed now, or the token of a
// card on file. Exactly one is set.
type Source struct {
	Card  *CardInput
	Token string
}

// Gateway is a card payment gateway. Amounts are euro cents. A real
// gateway (a PSP's API) implements the same five calls; the built-in
// TestGateway runs in process.
type Gateway interface {
	// Tokenize verifies a card and returns its details with a reusable
	// token (the gateway reference of a card on file).
	Tokenize(ctx context.Context, card CardInput) (details CardDetails, token string, err error)
	// Authorize reserves amount on the card; the reference is used to
	// capture and release.
	Authorize(ctx context.Context, amount int64, src Source) (ref string, err error)
	// Capture takes amount (all or part of what is still authorized).
	Capture(ctx context.Context, ref string, amount int64) error
	// Release lets go of what is still authorized.
	Release(ctx context.Context, ref string) error
	// Charge authorizes and captures at once (deposits).
	Charge(ctx context.Context, amount int64, src Source) (ref string, err error)
}

// Test card numbers understood by TestGateway. Any other number that
// passes ValidateCard (Luhn, brand, expiry, CVC) is approved.
const (
	TestCardVisa              = "4242424242424242" // approved
	TestCardMastercard        = "5555555555554444" // approved
	TestCardDeclined          = "4000000000000002" // declined: "card declined"
	TestCardInsufficientFunds = "4000000000009995" // declined: "insufficient funds" (when money is taken)
)

// Decline errors. They belong beside the card number field.
var (
	ErrCardDeclined = &portal.Error{Code: portal.EInvalid, Field: FieldCardNumber, Key: "billing.card_declined",
		Message: "The card was declined. Use another card or another payment method."}
	ErrInsufficientFunds = &portal.Error{Code: portal.EInvalid, Field: FieldCardNumber, Key: "billing.insufficient_funds",
		Message: "The card was declined for insufficient funds. Use another card or another payment method."}
)

// TestGateway is the built-in gateway for development and tests. It is
// stateless across restarts: its tokens and references carry what it
// needs, so a card on file saved yesterday still works today. Amount
// bookkeeping (how much of an authorization is still open) is the
// ledger's job in Service; the gateway checks the reference format only.
//
// Behaviour:
//   - every card is checked with ValidateCard at the injected clock
//     (Luhn, brand from the IIN, expiry not past, CVC 3-4 digits);
//   - 4000000000000002 is declined ("card declined") everywhere, including
//     when saved as a card on file;
//   - 4000000000009995 can be saved (verification passes, as with a real
//     card) but every authorization or charge fails with "insufficient
//     funds";
//   - everything else valid is approved.
type TestGateway struct {
	Clock portal.Clock

	mu  sync.Mutex
	ops []string
}

// NewTestGateway returns a test gateway using clock for expiry checks.
func NewTestGateway(clock portal.Clock) *TestGateway { return &TestGateway{Clock: clock} }

// Ops returns the operations performed so far ("authorize <ref> <cents>",
// "capture <ref> <cents>", "release <ref>", "charge <ref> <cents>",
// "tokenize <token>"), for tests. No card number appears in them.
func (g *TestGateway) Ops() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.ops...)
}

func (g *TestGateway) record(format string, args ...any) {
	g.mu.Lock()
	g.ops = append(g.ops, fmt.Sprintf(format, args...))
	g.mu.Unlock()
}

const (
	tokenPrefix   = "tgtok_"  // tgtok_<outcome>_<random>
	authPrefix    = "tgauth_" // tgauth_<random>
	chargePrefix  = "tgchg_"  // tgchg_<random>
	outcomeOK     = "ok"
	outcomeNoFund = "nsf"
)

func (g *TestGateway) check(card CardInput) (CardDetails, string, error) {
	d, err := ValidateCard(card, g.Clock.Now())
	if err != nil {
		return d, "", err
	}
	num, _ := normalizeNumber(card.Number)
	switch num {
	case TestCardDeclined:
		return d, "", ErrCardDeclined
	case TestCardInsufficientFunds:
		return d, outcomeNoFund, nil
	}
	return d, outcomeOK, nil
}

// outcome decides a source's fate: a typed card is checked, a token
// carries the outcome it was saved with.
func (g *TestGateway) outcome(src Source) (string, error) {
	if src.Card != nil {
		_, o, err := g.check(*src.Card)
		return o, err
	}
	rest, ok := strings.CutPrefix(src.Token, tokenPrefix)
	o, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || (o != outcomeOK && o != outcomeNoFund) {
		return "", portal.Errorf(portal.EInvalid, "unknown card token")
	}
	return o, nil
}

// Tokenize implements Gateway.
func (g *TestGateway) Tokenize(ctx context.Context, card CardInput) (CardDetails, string, error) {
	d, o, err := g.check(card)
	if err != nil {
		return CardDetails{}, "", err
	}
	tok := tokenPrefix + o + "_" + portal.NewToken()
	g.record("tokenize %s", tok)
	return d, tok, nil
}

func (g *TestGateway) take(prefix, op string, amount int64, src Source) (string, error) {
	if amount <= 0 {
		return "", portal.Errorf(portal.EInvalid, "amount must be positive")
	}
	o, err := g.outcome(src)
	if err != nil {
		return "", err
	}
	if o == outcomeNoFund {
		return "", ErrInsufficientFunds
	}
	ref := prefix + portal.NewToken()
	g.record("%s %s %d", op, ref, amount)
	return ref, nil
}

// Authorize implements Gateway.
func (g *TestGateway) Authorize(ctx context.Context, amount int64, src Source) (string, error) {
	return g.take(authPrefix, "authorize", amount, src)
}

// Charge implements Gateway.
func (g *TestGateway) Charge(ctx context.Context, amount int64, src Source) (string, error) {
	return g.take(chargePrefix, "charge", amount, src)
}

// Capture implements Gateway.
func (g *TestGateway) Capture(ctx context.Context, ref string, amount int64) error {
	if !strings.HasPrefix(ref, authPrefix) {
		return portal.Errorf(portal.EConflict, "unknown authorization")
	}
	if amount <= 0 {
		return portal.Errorf(portal.EInvalid, "amount must be positive")
	}
	g.record("capture %s %d", ref, amount)
	return nil
}

// Release implements Gateway.
func (g *TestGateway) Release(ctx context.Context, ref string) error {
	if !strings.HasPrefix(ref, authPrefix) {
		return portal.Errorf(portal.EConflict, "unknown authorization")
	}
	g.record("release %s", ref)
	return nil
}
