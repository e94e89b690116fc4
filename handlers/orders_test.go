package handlers

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"certdesk/internal/ordering"
)

// The order form's HTML, read back the way a browser would show it.

func inputValue(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`<input[^>]* name="` + regexp.QuoteMeta(name) + `"[^>]*>`).FindString(body)
	if m == "" {
		t.Fatalf("no input %q on the page", name)
	}
	v := regexp.MustCompile(` value="([^"]*)"`).FindStringSubmatch(m)
	if v == nil {
		return ""
	}
	return html.UnescapeString(v[1])
}

func textareaValue(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<textarea[^>]* name="` + regexp.QuoteMeta(name) + `"[^>]*>(.*?)</textarea>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no textarea %q on the page", name)
	}
	return html.UnescapeString(m[1])
}

// checkedValue returns the value of the checked radio (or checkbox) name.
func checkedValue(body, name string) string {
	for _, in := range regexp.MustCompile(`<input[^>]* name="`+regexp.QuoteMeta(name)+`"[^>]*>`).FindAllString(body, -1) {
		if regexp.MustCompile(` checked[ />]`).MatchString(in) {
			if v := regexp.MustCompile(` value="([^"]*)"`).FindStringSubmatch(in); v != nil {
				return html.UnescapeString(v[1])
			}
		}
	}
	return ""
}

// selectedValue returns the selected option of the select with that id.
func selectedValue(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<select[^>]* id="` + regexp.QuoteMeta(id) + `"[^>]*>(.*?)</select>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no select #%s", id)
	}
	v := regexp.MustCompile(`<option value="([^"]*)"[^>]* selected`).FindStringSubmatch(m[1])
	if v == nil {
		return ""
	}
	return v[1]
}

func fieldError(body, field string) string {
	m := regexp.MustCompile(`<p class="error" id="` + regexp.QuoteMeta(field) + `-error">([^<]*)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// orderForm is a filled-in order form: Secure Email for Business on the
// account's organization, paid by contract, agreed.
func (e *orderEnv) orderForm(recipients ...map[string]string) url.Values {
	v := url.Values{"product": {"secure_email_sponsor"}, "organization": {strconv.FormatInt(e.acct.orgID, 10)},
		"signature_hash": {"sha512"}, "validity": {"2y"}, "auto_renew": {"renew"}, "additional_emails": {"boss@example.com, audit@example.com"},
		"payment_method": {"contract"}, "agree": {"1"}, "idempotency_key": {"form-key-1"}, "recipients": {strconv.Itoa(len(recipients))}}
	for i, r := range recipients {
		for k, val := range r {
			v.Set("r"+strconv.Itoa(i)+"_"+k, val)
		}
	}
	return v
}

// signedInOrderer signs the account's administrator in.
// submitJaneKeyGen places, as c, an order for Jane Doe whose key is made
// in her browser (KeyGen) and returns the order page's path.
func (e *orderEnv) submitJaneKeyGen(c *client) string {
	e.t.Helper()
	form := e.orderForm(map[string]string{"cn": "name", "name": "Jane Doe", "email": "jane@example.com", "csrmode": "browser"})
	r := c.post("/orders/new", "/orders/new", form)
	if r.status != http.StatusSeeOther {
		e.t.Fatalf("submit: %d %s", r.status, r.body)
	}
	return r.header.Get("Location")
}

func (e *orderEnv) signedInOrderer() *client {
	c := e.client()
	c.signIn(e.acct.admin.Email, e.acct.pw)
	return c
}

// assertKept checks the order-level values of form came back as typed.
func assertKept(t *testing.T, body string, form url.Values) {
	t.Helper()
	for _, id := range []string{"product", "organization", "signature_hash", "auto_renew"} {
		if got := selectedValue(t, body, id); got != form.Get(id) {
			t.Errorf("select %s: %q, want %q", id, got, form.Get(id))
		}
	}
	for _, name := range []string{"validity", "payment_method", "agree"} {
		if got := checkedValue(body, name); got != form.Get(name) {
			t.Errorf("%s: %q checked, want %q", name, got, form.Get(name))
		}
	}
	for _, name := range []string{"additional_emails", "idempotency_key"} {
		if got := inputValue(t, body, name); got != form.Get(name) {
			t.Errorf("%s: %q, want %q", name, got, form.Get(name))
		}
	}
}

// Without JavaScript, "Add another certificate" and "Remove" are server
// round-trips that keep everything typed, CSRs included, and store nothing.
func TestOrderFormAddRemoveRecipientKeepsValues(t *testing.T) {
	e := newOrderEnv(t)
	c := e.signedInOrderer()
	if r := c.get("/orders/new"); r.status != 200 || checkedValue(r.body, "payment_method") != "contract" {
		t.Fatalf("form: %d, payment preselected %q", r.status, checkedValue(r.body, "payment_method"))
	}
	csr := testCSR(t)
	form := e.orderForm(map[string]string{"cn": "name", "name": "Jane Doe", "email": "jane@example.com", "csrmode": "csr", "csr": csr})
	form.Set("action", "add")
	r := c.post("/orders/new", "/orders/new", form)
	if r.status != 200 {
		t.Fatalf("add: %d", r.status)
	}
	assertKept(t, r.body, form)
	if inputValue(t, r.body, "recipients") != "2" || inputValue(t, r.body, "r1_email") != "" || checkedValue(r.body, "r1_csrmode") != "browser" {
		t.Fatal("no empty second recipient")
	}
	if inputValue(t, r.body, "r0_name") != "Jane Doe" || inputValue(t, r.body, "r0_email") != "jane@example.com" ||
		checkedValue(r.body, "r0_cn") != "name" || checkedValue(r.body, "r0_csrmode") != "csr" || textareaValue(t, r.body, "r0_csr") != csr {
		t.Fatal("first recipient not kept")
	}
	if fieldError(r.body, "r0_email") != "" || strings.Contains(r.body, `class="alert"`) {
		t.Fatal("adding a recipient showed errors")
	}

	// type the second, then remove the first: the second moves up intact
	form = e.orderForm(
		map[string]string{"cn": "name", "name": "Jane Doe", "email": "jane@example.com", "csrmode": "csr", "csr": csr},
		map[string]string{"cn": "email", "name": "", "email": "bob@example.com", "csrmode": "browser"})
	form.Set("action", "remove:0")
	r = c.post("/orders/new", "/orders/new", form)
	if r.status != 200 {
		t.Fatalf("remove: %d", r.status)
	}
	assertKept(t, r.body, form)
	if inputValue(t, r.body, "recipients") != "1" || inputValue(t, r.body, "r0_email") != "bob@example.com" || checkedValue(r.body, "r0_cn") != "email" ||
		strings.Contains(r.body, "jane@example.com") || strings.Contains(r.body, `name="r1_email"`) {
		t.Fatal("remove did not drop the first recipient and renumber the second")
	}
	// the last recipient cannot be removed
	form = e.orderForm(map[string]string{"email": "bob@example.com"})
	form.Set("action", "remove:0")
	if r = c.post("/orders/new", "/orders/new", form); inputValue(t, r.body, "r0_email") != "bob@example.com" {
		t.Fatal("the only recipient was removed")
	}
	if e.countOrders() != 0 {
		t.Fatal("add/remove stored an order")
	}
}

// A pasted private key is refused with its own message beside that
// recipient's CSR field; everything else stays; the key is neither sent
// back, stored, nor logged. In Dutch the message is Dutch.
func TestOrderFormPrivateKeyRefused(t *testing.T) {
	e := newOrderEnv(t)
	c := e.signedInOrderer()
	key := testPrivateKeyPEM(t)
	csr := testCSR(t)
	form := e.orderForm(
		map[string]string{"cn": "name", "name": "Jane Doe", "email": "jane@example.com", "csrmode": "csr", "csr": key},
		map[string]string{"cn": "name", "name": "Test Person", "email": "bob@example.com", "csrmode": "csr", "csr": csr})
	r := c.post("/orders/new", "/orders/new", form)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", r.status)
	}
	if msg := fieldError(r.body, "r0_csr"); !strings.HasPrefix(msg, "This is a private key. Never share it") {
		t.Fatalf("r0_csr message: %q", msg)
	}
	if fieldError(r.body, "r1_csr") != "" || fieldError(r.body, "r0_email") != "" {
		t.Fatal("errors on fields that were right")
	}
	assertKept(t, r.body, form)
	if inputValue(t, r.body, "r0_name") != "Jane Doe" || inputValue(t, r.body, "r0_email") != "jane@example.com" || checkedValue(r.body, "r0_csrmode") != "csr" ||
		inputValue(t, r.body, "r1_email") != "bob@example.com" || textareaValue(t, r.body, "r1_csr") != csr {
		t.Fatal("typed values lost")
	}
	keyBody := strings.Split(strings.TrimSpace(key), "\n")[1]
	if strings.Contains(r.body, keyBody) || strings.Contains(r.body, "PRIVATE KEY-----") {
		t.Fatal("the private key was sent back to the browser")
	}
	if strings.Contains(e.logs.String(), keyBody) {
		t.Fatal("the private key is in the logs")
	}
	if e.countOrders() != 0 {
		t.Fatal("order stored")
	}
	// adding a recipient shows the message too, without the key
	form.Set("action", "add")
	r = c.post("/orders/new", "/orders/new", form)
	if r.status != 200 || !strings.HasPrefix(fieldError(r.body, "r0_csr"), "This is a private key") || strings.Contains(r.body, keyBody) ||
		inputValue(t, r.body, "recipients") != "3" || textareaValue(t, r.body, "r1_csr") != csr {
		t.Fatalf("add with a private key: %d %q", r.status, fieldError(r.body, "r0_csr"))
	}
	// "Deposit funds" saves a draft of the form: never with the key in it
	form.Set("action", "deposit")
	r = c.post("/orders/new", "/orders/new", form)
	if r.status != http.StatusSeeOther {
		t.Fatalf("deposit: %d", r.status)
	}
	var drafts string
	if err := e.db.QueryRow(`SELECT group_concat(body, '|') FROM order_drafts`).Scan(&drafts); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(drafts, keyBody) || !strings.Contains(drafts, "bob@example.com") {
		t.Fatalf("draft: key stored %v, values kept %v", strings.Contains(drafts, keyBody), strings.Contains(drafts, "bob@example.com"))
	}

	c.get("/lang/nl")
	form.Set("action", "submit")
	r = c.post("/orders/new", "/orders/new", form)
	if msg := fieldError(r.body, "r0_csr"); !strings.HasPrefix(msg, "Dit is een privésleutel") {
		t.Fatalf("Dutch message: %q", msg)
	}
}

// gmail.com is refused for Secure Email for Business beside the email
// field (form kept) and accepted for Secure Email for Individual.
func TestOrderFormPublicMailRule(t *testing.T) {
	e := newOrderEnv(t)
	c := e.signedInOrderer()
	form := e.orderForm(map[string]string{"cn": "name", "name": "Jane Doe", "email": "jane.doe@gmail.com", "csrmode": "browser"})
	r := c.post("/orders/new", "/orders/new", form)
	if r.status != http.StatusUnprocessableEntity || !strings.HasPrefix(fieldError(r.body, "r0_email"), "gmail.com is a public mail provider") {
		t.Fatalf("business + gmail: %d %q", r.status, fieldError(r.body, "r0_email"))
	}
	assertKept(t, r.body, form)
	if inputValue(t, r.body, "r0_email") != "jane.doe@gmail.com" || inputValue(t, r.body, "r0_name") != "Jane Doe" {
		t.Fatal("recipient not kept")
	}
	form.Set("product", "secure_email_mailbox")
	form.Set("r0_cn", "email")
	r = c.post("/orders/new", "/orders/new", form)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/orders/") {
		t.Fatalf("individual + gmail: %d %q", r.status, fieldError(r.body, "r0_email"))
	}
	page := c.get(r.header.Get("Location"))
	mustContain(t, page.body, "jane.doe@gmail.com", "Awaiting mailbox validation",
		`action="/mailboxes/resend"`, `name="email" value="jane.doe@gmail.com"`, "Send the confirmation link again")
}

// A double submit (same idempotency key) makes one order and one payment;
// both answers lead to it.
func TestOrderFormDoubleSubmitOneOrder(t *testing.T) {
	e := newOrderEnv(t)
	c := e.signedInOrderer()
	form := e.orderForm(map[string]string{"cn": "name", "name": "Test Person", "email": "jane@example.com", "csrmode": "browser"},
		map[string]string{"cn": "name", "name": "Test Person", "email": "bob@example.com", "csrmode": "csr", "csr": testCSR(t)})
	r1 := c.post("/orders/new", "/orders/new", form)
	r2 := c.post("/orders/new", "/orders/new", form)
	if r1.status != http.StatusSeeOther || r2.status != http.StatusSeeOther || r1.header.Get("Location") != r2.header.Get("Location") {
		t.Fatalf("double submit: %d %s / %d %s", r1.status, r1.header.Get("Location"), r2.status, r2.header.Get("Location"))
	}
	if n := e.countOrders(); n != 1 {
		t.Fatalf("%d orders", n)
	}
	id, _ := strconv.ParseInt(strings.TrimPrefix(r1.header.Get("Location"), "/orders/"), 10, 64)
	if got := e.ledgerKinds(e.acct.admin.AccountID, id); len(got) != 1 || got[0] != "commit:contract:19600" {
		t.Fatalf("ledger: %v", got)
	}
	// a new form gets a new key
	if k := inputValue(t, c.get("/orders/new").body, "idempotency_key"); k == "" || k == "form-key-1" {
		t.Fatalf("fresh form key %q", k)
	}
}

// The order page lists the recipients' statuses and the next steps; a
// card-paid order is cancelled from it and the authorization is released
// (shown in the ledger); another account's order is a 404.
func TestOrderPageTasksAndCancelReleasesCard(t *testing.T) {
	e := newOrderEnv(t)
	c := e.signedInOrderer()
	form := e.orderForm(map[string]string{"cn": "name", "name": "Test Person", "email": "jane@example.com", "csrmode": "browser"},
		map[string]string{"cn": "name", "name": "Test Person", "email": "pat@newco.nl", "csrmode": "browser"},
		map[string]string{"cn": "name", "name": "Test Person", "email": "bob@example.com", "csrmode": "csr", "csr": testCSR(t)})
	form.Set("payment_method", "card")
	for k, v := range map[string]string{"card_name": "Alex Admin", "card_number": "4242 4242 4242 4242", "card_expiry": "12/29", "card_cvc": "123"} {
		form.Set(k, v)
	}
	r := c.post("/orders/new", "/orders/new", form)
	if r.status != http.StatusSeeOther {
		t.Fatalf("submit: %d %s", r.status, fieldError(r.body, "card_number")+fieldError(r.body, "payment_method"))
	}
	loc := r.header.Get("Location")
	page := c.get(loc)
	mustContain(t, page.body, "Awaiting key generation", "Awaiting domain validation", "newco.nl", "jane@example.com", "bob@example.com", "Example Corp B.V.")
	for email, want := range map[string]string{"jane@example.com": "Awaiting key generation", "pat@newco.nl": "Awaiting domain validation", "bob@example.com": "Being issued"} {
		row := regexp.MustCompile(`(?s)<tr data-recipient="` + regexp.QuoteMeta(email) + `">.*?</tr>`).FindString(page.body)
		if !strings.Contains(strings.ToLower(row), strings.ToLower(want)) {
			t.Errorf("%s: row %q lacks %q", email, row, want)
		}
	}
	if !strings.Contains(page.body, `href="/domains"`) {
		t.Error("no link to the domain validation task")
	}
	id, _ := strconv.ParseInt(strings.TrimPrefix(loc, "/orders/"), 10, 64)
	if got := e.ledgerKinds(e.acct.admin.AccountID, id); len(got) != 1 || !strings.HasPrefix(got[0], "authorize:card:") {
		t.Fatalf("ledger after submit: %v", got)
	}
	var pan int
	e.db.QueryRow(`SELECT COUNT(*) FROM billing_ledger WHERE detail LIKE '%4242424242424242%' OR gateway_ref LIKE '%4242424242424242%'`).Scan(&pan)
	if pan != 0 || strings.Contains(e.logs.String(), "4242424242424242") || strings.Contains(e.logs.String(), "4242 4242 4242 4242") {
		t.Fatal("card number stored or logged")
	}

	// another account sees nothing
	other := e.newAccount("Rival Corp", "admin@rival.test", "rival.test", false)
	oc := e.client()
	oc.signIn("admin@rival.test", other.pw)
	if r := oc.get(loc); r.status != 404 {
		t.Fatalf("other account's GET: %d", r.status)
	}
	if r := oc.post("/orders/new", loc+"/cancel", nil); r.status != 404 {
		t.Fatalf("other account's cancel: %d", r.status)
	}

	r = c.post(loc, loc+"/cancel", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != loc {
		t.Fatalf("cancel: %d", r.status)
	}
	got := e.ledgerKinds(e.acct.admin.AccountID, id)
	if len(got) != 2 || !strings.HasPrefix(got[1], "release:card:") || strings.TrimPrefix(got[0], "authorize") != strings.TrimPrefix(got[1], "release") {
		t.Fatalf("ledger after cancel: %v", got)
	}
	page = c.get(loc)
	mustContain(t, page.body, "Cancelled")
	if strings.Contains(page.body, "/cancel\"") {
		t.Fatal("a cancelled order still offers Cancel")
	}
	acct := c.get("/account")
	mustContain(t, acct.body, "Visa •••• 4242")
	if !regexp.MustCompile(`(?is)release`).MatchString(acct.body) {
		t.Fatal("the account's ledger does not show the release")
	}
	// cancelling again: a message, no second release
	c.post(loc, loc+"/cancel", nil)
	if got := e.ledgerKinds(e.acct.admin.AccountID, id); len(got) != 2 {
		t.Fatalf("second cancel: %v", got)
	}
}

// Balance too low: the message beside the payment method offers a
// deposit; the deposit brings the requestor back to the form with
// everything typed; then the order goes through on the balance.
func TestOrderFormBalanceDepositRoundTrip(t *testing.T) {
	e := newOrderEnv(t)
	c := e.signedInOrderer()
	csr := testCSR(t)
	form := e.orderForm(map[string]string{"cn": "name", "name": "Jane Doe", "email": "jane@example.com", "csrmode": "csr", "csr": csr},
		map[string]string{"cn": "name", "name": "Test Person", "email": "bob@example.com", "csrmode": "browser"})
	form.Set("payment_method", "balance")
	r := c.post("/orders/new", "/orders/new", form)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(fieldError(r.body, "payment_method"), "is too low for this order (€196.00)") {
		t.Fatalf("balance too low: %d %q", r.status, fieldError(r.body, "payment_method"))
	}
	form.Set("action", "deposit")
	r = c.post("/orders/new", "/orders/new", form)
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/account/deposit?return=") {
		t.Fatalf("deposit: %d %s", r.status, loc)
	}
	u, _ := url.Parse(loc)
	back := u.Query().Get("return")
	dep := url.Values{"amount": {"250"}, "return": {back}, "card_source": {"new"}, "card_name": {"Alex"}, "card_number": {"4242 4242 4242 4242"},
		"card_expiry": {"12/29"}, "card_cvc": {"123"}}
	r = c.post(loc, "/account/deposit", dep)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != back {
		t.Fatalf("deposit: %d to %q, want %q", r.status, r.header.Get("Location"), back)
	}
	r = c.get(back)
	if r.status != 200 {
		t.Fatalf("back to the form: %d", r.status)
	}
	assertKept(t, r.body, form)
	if checkedValue(r.body, "payment_method") != "balance" || inputValue(t, r.body, "r0_name") != "Jane Doe" || textareaValue(t, r.body, "r0_csr") != csr ||
		inputValue(t, r.body, "r1_email") != "bob@example.com" || checkedValue(r.body, "r1_csrmode") != "browser" {
		t.Fatal("the form came back without what was typed")
	}
	mustContain(t, r.body, "€250.00")
	form.Set("action", "submit")
	if r = c.post(back, "/orders/new", form); r.status != http.StatusSeeOther {
		t.Fatalf("order on balance: %d %q", r.status, fieldError(r.body, "payment_method"))
	}
	b, _ := e.bill.Balance(context.Background(), e.acct.admin.AccountID)
	if b.BalanceCents != 25000 || b.HeldCents != 19600 || b.AvailableCents != 5400 {
		t.Fatalf("balance: %+v", b)
	}
}

// The order page says whether the order renews itself, links the renewal
// order once it exists, and shows a failed renewal's reason.
func TestOrderPageAutoRenewState(t *testing.T) {
	e := newOrderEnv(t)
	c := e.signedInOrderer()
	loc := e.submitJaneKeyGen(c)
	if page := c.get(loc); !strings.Contains(page.body, "Renew automatically when the period ends") {
		t.Fatal("auto-renew state not shown")
	}
	id := strings.TrimPrefix(loc, "/orders/")
	if _, err := e.db.Exec(`UPDATE orders SET renewal_failure = 'Your card was declined.' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	if page := c.get(loc); !strings.Contains(page.body, "The last automatic renewal failed: Your card was declined.") {
		t.Fatal("renewal failure not shown")
	}
	if _, err := e.db.Exec(`UPDATE orders SET renewal_order_id = ?, renewal_failure = '' WHERE id = ?`, id, id); err != nil {
		t.Fatal(err)
	}
	if page := c.get(loc); !strings.Contains(page.body, `href="/orders/`+id+`">Renewed as order #`+id) {
		t.Fatal("renewal order not linked")
	}
}

// A recipient held by the pipeline shows the reason in the page's
// language (the store keeps the pipeline's fixed reasons in English).
func TestOrderPageHeldReasonTranslated(t *testing.T) {
	e := newOrderEnv(t)
	c := e.signedInOrderer()
	loc := e.submitJaneKeyGen(c)
	id := strings.TrimPrefix(loc, "/orders/")
	for reason, want := range map[string][2]string{
		ordering.HeldForReview:              {"Issuance is held for review by the CA.", "De uitgifte wordt aangehouden voor beoordeling door de CA."},
		ordering.KeyCompromised:             {"The key of this request was reported compromised", "De sleutel van deze aanvraag"},
		"CAA: example.com names another CA": {"CAA: example.com names another CA", "CAA: example.com names another CA"},
	} {
		if _, err := e.db.Exec(`UPDATE recipients SET status = 'held', held_reason = ? WHERE order_id = ?`, reason, id); err != nil {
			t.Fatal(err)
		}
		for i, lang := range []string{"en", "nl"} {
			if _, err := e.db.Exec(`UPDATE users SET lang = ?`, lang); err != nil {
				t.Fatal(err)
			}
			if page := c.get(loc); !strings.Contains(html.UnescapeString(page.body), want[i]) {
				t.Errorf("%s page lacks %q", lang, want[i])
			}
		}
	}
}
