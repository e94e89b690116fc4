package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"certdesk/internal/billing"
	"certdesk/internal/portal"
)

// The full billing service is what the order pages need.
var _ BillingInfo = (*billing.Service)(nil)

const testPW = "correct horse battery staple"

// acctBilling is a billing service over the test env's database.
func (e *testEnv) acctBilling() *billing.Service {
	return billing.NewService(e.db, billing.NewTestGateway(e.clock), e.clock)
}

// apiGet calls an API path with an X-API-Key header (no cookies).
func (e *testEnv) apiGet(path, key string) resp {
	e.t.Helper()
	c := e.client()
	h := map[string]string{}
	if key != "" {
		h[APIKeyHeader] = key
	}
	return c.do("GET", path, nil, h)
}

// whoamiRoute adds a test-only API route behind requireAPIKey that
// answers with currentUser(c).
func (e *testEnv) whoamiRoute() {
	e.srv.Echo.GET("/api/test/whoami", func(c echo.Context) error {
		u := currentUser(c)
		return c.JSON(http.StatusOK, map[string]any{"email": u.Email, "account_id": u.AccountID})
	}, e.srv.requireAPIKey)
}

var newKeyRe = regexp.MustCompile(`id="new-api-key"[^>]*value="(cd_[a-z2-7]+)"|value="(cd_[a-z2-7]+)"[^>]*id="new-api-key"`)

func newKeyFrom(t *testing.T, body string) string {
	t.Helper()
	m := newKeyRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no new key on the page")
	}
	return m[1] + m[2]
}

func TestAccountPageEmptyStatesAndRoles(t *testing.T) {
	e := newTestEnv(t)
	e.addUser("admin@example.com", portal.RoleAccountAdmin, "Example Corp")
	e.addUser("user@example.com", portal.RoleUser, "Example Corp")
	e.addUser("other@other.example", portal.RoleAccountAdmin, "Other BV")

	admin := e.client()
	admin.signIn("admin@example.com", testPW)
	r := admin.get("/account")
	if r.status != 200 {
		t.Fatalf("account page: %d", r.status)
	}
	for _, want := range []string{"Example Corp", "admin@example.com", "user@example.com", "Account administrator",
		"No payments yet", "This account has no contract", "No card on file", "No API keys yet", "Create API key",
		`href="/account/deposit"`, "€0.00", `href="/account/card"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	if strings.Contains(r.body, "other@other.example") {
		t.Error("another account's user listed")
	}

	user := e.client()
	user.signIn("user@example.com", testPW)
	r = user.get("/account")
	if r.status != 200 || strings.Contains(r.body, "Create API key") || strings.Contains(r.body, `href="/account/card"`) {
		t.Fatalf("plain user sees admin actions: %d", r.status)
	}
	// admin-only actions are refused to a plain user
	if r := user.post("/account", "/account/apikeys", url.Values{"name": {"mine"}}); r.status != http.StatusForbidden {
		t.Fatalf("plain user created a key: %d", r.status)
	}
	if r := user.get("/account/card"); r.status != http.StatusForbidden {
		t.Fatalf("plain user opened the card page: %d", r.status)
	}
	// anonymous: sign in first
	if r := e.client().get("/account"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/signin" {
		t.Fatalf("anonymous: %d", r.status)
	}
	// Dutch
	admin.get("/lang/nl?next=/account")
	if r = admin.get("/account"); !strings.Contains(r.body, "Betaalgeschiedenis") || !strings.Contains(r.body, "€ 0,00") {
		t.Fatalf("Dutch account page: %d", r.status)
	}
}

func TestAPIKeyCreateShowOnceUseRevoke(t *testing.T) {
	e := newTestEnv(t)
	e.whoamiRoute()
	e.addUser("admin@example.com", portal.RoleAccountAdmin, "Example Corp")
	e.addUser("other@other.example", portal.RoleAccountAdmin, "Other BV")
	admin := e.client()
	admin.signIn("admin@example.com", testPW)

	// a name is required; the error is beside the field
	r := admin.post("/account", "/account/apikeys", url.Values{"name": {"  "}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="name-error"`) || !strings.Contains(r.body, "Give the key a name") {
		t.Fatalf("empty name: %d", r.status)
	}
	long := strings.Repeat("x", 81)
	if r := admin.post("/account", "/account/apikeys", url.Values{"name": {long}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `value="`+long+`"`) {
		t.Fatalf("long name not kept: %d", r.status)
	}

	r = admin.post("/account", "/account/apikeys", url.Values{"name": {"CI pipeline"}})
	if r.status != http.StatusCreated || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %q", r.status, r.header.Get("Cache-Control"))
	}
	key := newKeyFrom(t, r.body)
	if !strings.Contains(r.body, "shown only this once") {
		t.Error("no copy hint")
	}
	// shown once: the next page view has the prefix, not the key
	r = admin.get("/account")
	if strings.Contains(r.body, key) || !strings.Contains(r.body, key[:11]+"…") || !strings.Contains(r.body, "CI pipeline") || !strings.Contains(r.body, "Never") {
		t.Fatalf("list after create")
	}

	// the key authenticates as its user
	r = e.apiGet("/api/test/whoami", key)
	var who struct {
		Email string `json:"email"`
	}
	if r.status != 200 || json.Unmarshal([]byte(r.body), &who) != nil || who.Email != "admin@example.com" {
		t.Fatalf("whoami: %d %s", r.status, r.body)
	}
	t0 := e.clock.Now()
	k, err := e.db.APIKeyBySecret(context.Background(), key)
	if err != nil || !k.LastUsedAt.Equal(t0) {
		t.Fatalf("last use not recorded: %v %v", k.LastUsedAt, err)
	}
	// last use is written at most once a minute
	e.clock.Advance(30 * time.Second)
	e.apiGet("/api/test/whoami", key)
	if k, _ = e.db.APIKeyBySecret(context.Background(), key); !k.LastUsedAt.Equal(t0) {
		t.Fatalf("last use rewritten within a minute: %v", k.LastUsedAt)
	}
	e.clock.Advance(31 * time.Second)
	e.apiGet("/api/test/whoami", key)
	if k, _ = e.db.APIKeyBySecret(context.Background(), key); !k.LastUsedAt.Equal(t0.Add(61 * time.Second)) {
		t.Fatalf("last use not updated after a minute: %v", k.LastUsedAt)
	}
	if r := admin.get("/account"); !strings.Contains(r.body, fmtWhen(t0.Add(61*time.Second))) {
		t.Fatal("last use not shown")
	}

	// missing and unknown keys: 401 JSON
	for _, bad := range []string{"", "cd_" + strings.Repeat("a", 32), "nonsense"} {
		r := e.apiGet("/api/test/whoami", bad)
		var body struct {
			Errors []APIError `json:"errors"`
		}
		if r.status != http.StatusUnauthorized || json.Unmarshal([]byte(r.body), &body) != nil || len(body.Errors) != 1 ||
			body.Errors[0].Code != "unauthorized" || body.Errors[0].Message == "" {
			t.Fatalf("key %q: %d %s", bad, r.status, r.body)
		}
	}

	// another account cannot revoke it: 404, and it keeps working
	other := e.client()
	other.signIn("other@other.example", testPW)
	id := strconv.FormatInt(k.ID, 10)
	if r := other.post("/account", "/account/apikeys/"+id+"/revoke", nil); r.status != http.StatusNotFound {
		t.Fatalf("cross-account revoke: %d", r.status)
	}
	if r := other.post("/account", "/account/apikeys/x/revoke", nil); r.status != http.StatusNotFound {
		t.Fatalf("bad id: %d", r.status)
	}
	if r := e.apiGet("/api/test/whoami", key); r.status != 200 {
		t.Fatalf("key stopped working after a refused revoke: %d", r.status)
	}
	// revoke without the CSRF token: refused
	if r := admin.do("POST", "/account/apikeys/"+id+"/revoke", url.Values{}, nil); r.status != http.StatusForbidden {
		t.Fatalf("revoke without csrf: %d", r.status)
	}
	r = admin.post("/account", "/account/apikeys/"+id+"/revoke", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/account" {
		t.Fatalf("revoke: %d", r.status)
	}
	if r := admin.get("/account"); !strings.Contains(r.body, "The API key has been revoked.") || !strings.Contains(r.body, "Revoked ") {
		t.Fatal("revocation not shown")
	}
	r = e.apiGet("/api/test/whoami", key)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `"code":"unauthorized"`) || !strings.Contains(r.body, "revoked") {
		t.Fatalf("revoked key: %d %s", r.status, r.body)
	}
	// the real API group refuses it too
	if r := e.apiGet("/api/v1/organization", key); r.status != http.StatusUnauthorized {
		t.Fatalf("/api/v1 with a revoked key: %d", r.status)
	}
	if strings.Contains(e.logs.String(), key) {
		t.Fatal("API key in the logs")
	}
}

func TestDepositReturnsToTheOrderForm(t *testing.T) {
	e := newTestEnv(t)
	e.addUser("admin@example.com", portal.RoleAccountAdmin, "Example Corp")
	u, _ := e.addUser("user@example.com", portal.RoleUser, "Example Corp")
	c := e.client()
	c.signIn("user@example.com", testPW)
	ret := "/orders/new?draft=abc123"
	page := "/account/deposit?return=" + url.QueryEscape(ret)
	r := c.get(page)
	if r.status != 200 || !strings.Contains(r.body, `name="return" value="/orders/new?draft=abc123"`) || !strings.Contains(r.body, "Back to your order") {
		t.Fatalf("deposit page: %d", r.status)
	}
	// no card on file: the card fields are the only way; a plain user cannot keep the card
	if strings.Contains(r.body, `value="on_file"`) || strings.Contains(r.body, `name="save_card"`) {
		t.Fatal("card-on-file choice or save offered")
	}
	card := url.Values{"card_source": {"new"}, "card_name": {"Una User"}, "card_number": {"4242 4242 4242 4242"}, "card_expiry": {"12/28"}, "card_cvc": {"123"}}
	form := func(amount string, extra url.Values) url.Values {
		v := url.Values{"amount": {amount}, "return": {ret}}
		for k, vs := range card {
			v[k] = vs
		}
		for k, vs := range extra {
			v[k] = vs
		}
		return v
	}
	// bad amount: 422, beside the field, values kept (but never the card number or CVC)
	r = c.post(page, "/account/deposit", form("twelve", nil))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="amount-error"`) || !strings.Contains(r.body, `value="twelve"`) ||
		!strings.Contains(r.body, `value="Una User"`) || !strings.Contains(r.body, `value="12/28"`) || !strings.Contains(r.body, `name="return" value="/orders/new?draft=abc123"`) {
		t.Fatalf("bad amount: %d", r.status)
	}
	if strings.Contains(r.body, "4242 4242") || strings.Contains(r.body, "4242424242424242") {
		t.Fatal("card number sent back to the browser")
	}
	if r := c.post(page, "/account/deposit", form("5", nil)); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "Enter an amount between €10.00 and €100,000.00") {
		t.Fatalf("below minimum: %d", r.status)
	}
	// declined card: 422 beside the card number, nothing booked
	r = c.post(page, "/account/deposit", form("25", url.Values{"card_number": {billing.TestCardDeclined}}))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="card_number-error"`) || !strings.Contains(r.body, "The card was declined") {
		t.Fatalf("declined: %d", r.status)
	}
	r = c.post(page, "/account/deposit", form("25", url.Values{"card_expiry": {"10/26"}, "card_cvc": {"1"}}))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "This card has expired.") || !strings.Contains(r.body, `id="card_cvc-error"`) {
		t.Fatalf("expired card: %d", r.status)
	}
	if b, _ := e.acctBilling().Balance(context.Background(), u.AccountID); b.BalanceCents != 0 {
		t.Fatalf("failed deposits booked: %+v", b)
	}
	// success: back to the order form with the draft
	r = c.post(page, "/account/deposit", form("25,50", nil))
	if r.status != http.StatusSeeOther || r.header.Get("Location") != ret {
		t.Fatalf("deposit: %d %q", r.status, r.header.Get("Location"))
	}
	if b, _ := e.acctBilling().Balance(context.Background(), u.AccountID); b.BalanceCents != 2550 {
		t.Fatalf("balance %+v", b)
	}
	r = c.get("/account")
	if !strings.Contains(r.body, "€25.50") || !strings.Contains(r.body, "Deposit") || !strings.Contains(r.body, "Visa •••• 4242") || strings.Contains(r.body, "No payments yet") {
		t.Fatalf("ledger after deposit")
	}
	if !strings.Contains(r.body, "The funds have been added") {
		t.Fatal("no confirmation shown")
	}
	// open redirects are dropped: the deposit lands on the account page
	for _, evil := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "/ok\r\nLocation: x"} {
		r := c.post(page, "/account/deposit", url.Values{"amount": {"10"}, "return": {evil}, "card_source": {"new"},
			"card_name": {"U"}, "card_number": {billing.TestCardMastercard}, "card_expiry": {"12/28"}, "card_cvc": {"123"}})
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/account" {
			t.Errorf("return %q: %d -> %q", evil, r.status, r.header.Get("Location"))
		}
		if r := c.get("/account/deposit?return=" + url.QueryEscape(evil)); strings.Contains(r.body, `name="return"`) {
			t.Errorf("return %q kept on the page", evil)
		}
	}
	for _, pan := range []string{"4242424242424242", "4242 4242 4242 4242", "5555555555554444", billing.TestCardDeclined} {
		if strings.Contains(e.logs.String(), pan) {
			t.Fatalf("card number %s in the logs", pan)
		}
	}
}

func TestCardOnFileReplaceAndDepositWithIt(t *testing.T) {
	e := newTestEnv(t)
	a, _ := e.addUser("admin@example.com", portal.RoleAccountAdmin, "Example Corp")
	c := e.client()
	c.signIn("admin@example.com", testPW)
	// invalid card: 422 with the errors beside the fields
	r := c.post("/account/card", "/account/card", url.Values{"card_name": {"Alex"}, "card_number": {"4242424242424241"}, "card_expiry": {"1/2"}, "card_cvc": {"12"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "This card number is not valid") ||
		!strings.Contains(r.body, "Enter the expiry date as MM/YY") || !strings.Contains(r.body, `value="Alex"`) {
		t.Fatalf("invalid card: %d", r.status)
	}
	r = c.post("/account/card", "/account/card", url.Values{"card_name": {"Alex"}, "card_number": {billing.TestCardVisa}, "card_expiry": {"08/29"}, "card_cvc": {"123"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("save card: %d", r.status)
	}
	r = c.get("/account")
	if !strings.Contains(r.body, "Visa •••• 4242 · expires 08/2029") || !strings.Contains(r.body, "Replace the card") {
		t.Fatal("card on file not shown")
	}
	// replace with a Mastercard
	c.post("/account/card", "/account/card", url.Values{"card_name": {"Alex"}, "card_number": {billing.TestCardMastercard}, "card_expiry": {"09/30"}, "card_cvc": {"321"}})
	if r := c.get("/account/card"); !strings.Contains(r.body, "Mastercard •••• 4444") {
		t.Fatal("card not replaced")
	}
	// the deposit page offers it and uses it
	if r := c.get("/account/deposit"); !strings.Contains(r.body, `value="on_file"`) || !strings.Contains(r.body, "Mastercard •••• 4444") {
		t.Fatal("card on file not offered")
	}
	r = c.post("/account/deposit", "/account/deposit", url.Values{"amount": {"100"}, "card_source": {"on_file"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/account" {
		t.Fatalf("deposit with card on file: %d", r.status)
	}
	rows, _ := e.acctBilling().Ledger(context.Background(), a.AccountID, 10)
	if len(rows) != 1 || rows[0].Kind != billing.KindDeposit || rows[0].AmountCents != 10000 || rows[0].Detail != "Mastercard •••• 4444" {
		t.Fatalf("ledger %+v", rows)
	}
	// an admin can keep a new card while depositing
	r = c.post("/account/deposit", "/account/deposit", url.Values{"amount": {"10"}, "card_source": {"new"}, "save_card": {"1"},
		"card_name": {"Alex"}, "card_number": {"378282246310005"}, "card_expiry": {"01/31"}, "card_cvc": {"1234"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("deposit and save: %d", r.status)
	}
	if l, _ := e.acctBilling().CardOnFileLabel(context.Background(), a.AccountID); l != "American Express •••• 0005" {
		t.Fatalf("card on file after deposit-and-save: %q", l)
	}
}

func TestAccountShowsContractAndLedgerNewestFirst(t *testing.T) {
	e := newTestEnv(t)
	a, _ := e.addUser("admin@example.com", portal.RoleAccountAdmin, "Example Corp")
	ctx := context.Background()
	bs := e.acctBilling()
	if err := bs.SetContract(ctx, billing.Contract{AccountID: a.AccountID, Reference: "C-2026-7", Active: true, LimitCents: 100_000_00,
		Prices: map[portal.ProductID]int64{portal.ProductBusiness: 3900}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Deposit(ctx, a.AccountID, 5000, &billing.CardInput{Number: billing.TestCardVisa, Expiry: "12/28", CVC: "123", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if _, err := bs.Deposit(ctx, a.AccountID, 7000, &billing.CardInput{Number: billing.TestCardMastercard, Expiry: "12/28", CVC: "123", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.signIn("admin@example.com", testPW)
	r := c.get("/account")
	for _, want := range []string{"C-2026-7", "Active", "€100,000.00", "€39.00", "€49.00", "€120.00"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	i70, i50 := strings.Index(r.body, "€70.00"), strings.Index(r.body, "€50.00")
	if i70 < 0 || i50 < 0 || i70 > i50 {
		t.Fatalf("ledger not newest first (%d, %d)", i70, i50)
	}
}
