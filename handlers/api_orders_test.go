package handlers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"certdesk/internal/billing"
	"certdesk/internal/ca"
	"certdesk/internal/i18n"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
)

// orderEnv is the handler test server with the ordering service wired as
// in cmd/certdesk/wire.go: the real billing service with the test card
// gateway, the CA's CSR intake policy, and a recording stand-in for the
// validation service. Its account "Example Corp" has a validated
// organization with the validated domain example.com, an active contract,
// and an API key for its administrator.
type orderEnv struct {
	*testEnv
	bill *billing.Service
	val  *recValidator
	acct orderAccount
}

// orderAccount is a customer account set up for ordering.
type orderAccount struct {
	admin portal.User
	pw    string
	orgID int64
	key   string // X-API-Key of the administrator
}

// recValidator records the validations an order starts; no mailbox is
// validated.
type recValidator struct {
	mu                 sync.Mutex
	orgs               []int64
	domains, mailboxes []string
}

func (v *recValidator) SubmitOrgForOrder(_ context.Context, _ *sql.Tx, _, orgID, _ int64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.orgs = append(v.orgs, orgID)
	return nil
}

func (v *recValidator) StartDomainEmailForOrder(_ context.Context, _ *sql.Tx, _, _ int64, domain string, _ int64, _ string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.domains = append(v.domains, domain)
	return nil
}

func (v *recValidator) StartMailboxForOrder(_ context.Context, _ *sql.Tx, _ int64, email string, _ int64, _ string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.mailboxes = append(v.mailboxes, email)
	return nil
}

func (v *recValidator) MailboxValidated(context.Context, portal.Querier, int64, string) (bool, error) {
	return false, nil
}

// testOrderBilling adapts billing.Service to ordering.Billing as wire.go
// does: a typed card goes to the gateway, OnFile uses the card on file.
type testOrderBilling struct{ *billing.Service }

func (b testOrderBilling) Authorize(ctx context.Context, tx *sql.Tx, accountID, orderID int64, m portal.PaymentMethod, amount int64, card *ordering.Card) (string, error) {
	var ci *billing.CardInput
	if card != nil && !card.OnFile {
		ci = &billing.CardInput{Number: card.Number, Expiry: card.Expiry, CVC: card.CVC, Name: card.Name}
	}
	return b.Service.Authorize(ctx, tx, accountID, orderID, m, amount, ci)
}

func newOrderEnv(t *testing.T) *orderEnv {
	t.Helper()
	e := &orderEnv{testEnv: newTestEnv(t), val: &recValidator{}}
	e.bill = billing.NewService(e.db, billing.NewTestGateway(e.clock), e.clock)
	e.srv.Billing = e.bill
	e.srv.Ordering = &ordering.Service{Store: e.db, Billing: testOrderBilling{e.bill}, Validator: e.val, ParseCSR: ca.ParseCSR,
		Clock: e.clock, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e.acct = e.newAccount("Example Corp", "admin@example.com", "example.com", true)
	return e
}

// newAccount makes a customer account with an administrator, a validated
// organization owning the validated domain, an API key and, when
// contract is set, an active contract (limit €1,000,000, list prices).
func (e *orderEnv) newAccount(name, adminEmail, domain string, contract bool) orderAccount {
	e.t.Helper()
	ctx := context.Background()
	u, pw := e.addUser(adminEmail, portal.RoleAccountAdmin, name)
	now := e.clock.Now()
	org := portal.Organization{AccountID: u.AccountID, LegalName: name + " B.V.", Address: "Herengracht 1", City: "Amsterdam",
		PostalCode: "1015 BA", Country: "NL", Phone: "+31 20 555 0100", Registration: "NTRNL-12345678",
		OrgContact: portal.Contact{Name: "Olga", Email: "olga@" + domain}, TechContact: portal.Contact{Name: "Tom", Email: "tom@" + domain},
		Status: portal.OrgDraft, CreatedAt: now}
	if err := e.db.InsertOrg(ctx, nil, &org, "en"); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.SetOrgValidated(ctx, nil, org.ID, now, now.Add(portal.OrgValidationReuse), "test", ""); err != nil {
		e.t.Fatal(err)
	}
	d := portal.Domain{AccountID: u.AccountID, OrganizationID: org.ID, Name: domain, Method: portal.DCVDNSTXT,
		RandomValue: portal.NewToken(), ValueExpiresAt: now.Add(portal.DomainValueLifetime), CreatedAt: now}
	if err := e.db.InsertDomain(ctx, nil, &d, "en"); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.SetDomainValidated(ctx, nil, d.ID, now, now.Add(portal.DomainValidationReuse), "dns_txt"); err != nil {
		e.t.Fatal(err)
	}
	if contract {
		if err := e.bill.SetContract(ctx, billing.Contract{AccountID: u.AccountID, Reference: "C-TEST-1", Active: true, LimitCents: 1_000_000_00}); err != nil {
			e.t.Fatal(err)
		}
	}
	key, _, err := e.db.CreateAPIKey(ctx, u.AccountID, u.ID, "tests")
	if err != nil {
		e.t.Fatal(err)
	}
	return orderAccount{admin: u, pw: pw, orgID: org.ID, key: key}
}

// api sends a request to the JSON API. body may be a string, an io.Reader
// or anything else (encoded as JSON).
func (e *orderEnv) api(method, path, key, ctype string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = strings.NewReader(string(j))
	}
	req, _ := http.NewRequest(method, e.http.URL+"/api/v1"+path, rd)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set(APIKeyHeader, key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{status: r.StatusCode, body: string(b), header: r.Header}
}

// create posts an order for a product and returns the response.
func (e *orderEnv) create(product string, body any, hdr ...string) resp {
	e.t.Helper()
	return e.api("POST", "/order/certificate/"+product, e.acct.key, "application/json", body, hdr...)
}

// createdID returns the id of a 201 {"id":N} answer.
func createdID(t *testing.T, r resp) int64 {
	t.Helper()
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var out struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.ID == 0 {
		t.Fatalf("create answer %q: %v", r.body, err)
	}
	return out.ID
}

// apiErrorsOf decodes {"errors":[...]} and checks every entry has a code
// and a message.
func apiErrorsOf(t *testing.T, r resp) []APIError {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error answer is %q, not JSON: %.200s", ct, r.body)
	}
	var out struct {
		Errors []APIError `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || len(out.Errors) == 0 {
		t.Fatalf("no errors list in %.300s (%v)", r.body, err)
	}
	for _, e := range out.Errors {
		if e.Code == "" || e.Message == "" {
			t.Fatalf("error without code or message: %+v", e)
		}
	}
	return out.Errors
}

type apiOrderOut struct {
	ID         int64  `json:"id"`
	Status     string `json:"status"`
	ProductID  string `json:"product_id"`
	OrgID      *int64 `json:"organization_id"`
	Amount     int64  `json:"amount_cents"`
	Payment    string `json:"payment_method"`
	Recipients []struct {
		ID            int64  `json:"id"`
		Email         string `json:"email"`
		CommonName    string `json:"common_name"`
		Status        string `json:"status"`
		CertificateID *int64 `json:"certificate_id"`
	} `json:"recipients"`
}

func (e *orderEnv) getOrder(key string, id int64) (apiOrderOut, resp) {
	e.t.Helper()
	r := e.api("GET", fmt.Sprintf("/order/certificate/%d", id), key, "", nil)
	var o apiOrderOut
	if r.status == http.StatusOK {
		if err := json.Unmarshal([]byte(r.body), &o); err != nil {
			e.t.Fatalf("order JSON: %v", err)
		}
	}
	return o, r
}

func (e *orderEnv) countOrders() int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// ledgerKinds lists an order's ledger kinds, oldest first.
func (e *orderEnv) ledgerKinds(accountID, orderID int64) []string {
	e.t.Helper()
	rows, err := e.db.OrderLedger(context.Background(), nil, accountID, orderID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s:%s:%d", r.Kind, r.Method, r.AmountCents))
	}
	return out
}

// testCSR makes a valid ECDSA P-256 CSR (PEM); its subject is ignored.
func testCSR(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// testPrivateKeyPEM makes a PKCS#8 private key, the mistake the CSR
// field must catch.
func testPrivateKeyPEM(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func cert(email string) map[string]any { // the Organization product: address as CN
	return map[string]any{"common_name_indicator": "email_address", "emails": []string{email}}
}

// A single certificate and a certificates[] order are created (201
// {"id":N}), stored with the right recipients and statuses, paid by
// contract (one commitment of the full amount), and readable with GET.
// The same Idempotency-Key gives the same order.
func TestAPIOrderCreate(t *testing.T) {
	e := newOrderEnv(t)
	org := map[string]any{"id": e.acct.orgID}

	id := createdID(t, e.create("secure_email_sponsor", map[string]any{
		"certificate":  map[string]any{"common_name_indicator": "name", "common_name": "Jane Doe", "emails": []string{"Jane@Example.com"}, "signature_hash": "sha384"},
		"organization": org, "validity_years": 1, "payment_method": "contract", "additional_emails": []string{"boss@example.com"},
	}))
	o, r := e.getOrder(e.acct.key, id)
	if r.status != http.StatusOK {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	if o.ID != id || o.Status != "pending" || o.ProductID != "secure_email_sponsor" || o.OrgID == nil || *o.OrgID != e.acct.orgID ||
		o.Payment != "contract" || o.Amount != 4900 || len(o.Recipients) != 1 {
		t.Fatalf("order: %+v", o)
	}
	rc := o.Recipients[0]
	if rc.Email != "Jane@example.com" || rc.CommonName != "Jane Doe" || rc.Status != string(portal.RecipientAwaitingKeyGen) || rc.CertificateID != nil {
		t.Fatalf("recipient: %+v", rc)
	}
	if !strings.Contains(r.body, `"certificate_id":null`) {
		t.Fatalf("certificate_id is not null before issuance: %s", r.body)
	}
	if got := e.ledgerKinds(e.acct.admin.AccountID, id); len(got) != 1 || got[0] != "commit:contract:4900" {
		t.Fatalf("ledger: %v", got)
	}

	// certificates[]: a pasted CSR (ready to issue), one to generate in
	// the browser, one on a new domain (validated as part of the order).
	body := map[string]any{
		"certificates": []map[string]any{
			{"common_name_indicator": "email_address", "emails": []string{"a@example.com"}, "csr": testCSR(t)},
			cert("b@sub.example.com"), cert("c@newco.nl"),
		},
		"organization": org, "validity_days": 400,
	}
	id2 := createdID(t, e.create("secure_email_organization", body, "Idempotency-Key", "batch-1"))
	o2, _ := e.getOrder(e.acct.key, id2)
	want := map[string]portal.RecipientStatus{"a@example.com": portal.RecipientReady, "b@sub.example.com": portal.RecipientAwaitingKeyGen,
		"c@newco.nl": portal.RecipientAwaitingDomain}
	if len(o2.Recipients) != 3 {
		t.Fatalf("recipients: %+v", o2.Recipients)
	}
	for _, r := range o2.Recipients {
		if r.Status != string(want[r.Email]) {
			t.Errorf("%s: %s, want %s", r.Email, r.Status, want[r.Email])
		}
	}
	// no payment_method: the account's default (contract); 400 days = 2 started years
	if o2.Payment != "contract" || o2.Amount != 3*2*3900 {
		t.Fatalf("payment %s %d", o2.Payment, o2.Amount)
	}
	if len(e.val.domains) != 1 || e.val.domains[0] != "newco.nl" {
		t.Fatalf("domain validations started: %v", e.val.domains)
	}
	n := e.countOrders()
	if again := createdID(t, e.create("secure_email_organization", body, "Idempotency-Key", "batch-1")); again != id2 || e.countOrders() != n {
		t.Fatalf("same Idempotency-Key made order %d (first %d)", again, id2)
	}
	if got := e.ledgerKinds(e.acct.admin.AccountID, id2); len(got) != 1 {
		t.Fatalf("resubmit authorized again: %v", got)
	}

	// Secure Email for Individual takes a gmail.com address (mailbox validation).
	id3 := createdID(t, e.create("secure_email_mailbox", map[string]any{"certificate": cert("jane.doe@gmail.com"), "validity_years": 2}))
	o3, _ := e.getOrder(e.acct.key, id3)
	if o3.Recipients[0].Status != string(portal.RecipientAwaitingMailbox) || len(e.val.mailboxes) != 1 {
		t.Fatalf("individual: %+v %v", o3.Recipients, e.val.mailboxes)
	}
}

// unknownLength hides a reader's length, so the client sends the body
// chunked (no Content-Length).
type unknownLength struct{ io.Reader }

// Every bad request answers 4xx with {"errors":[{"code","field","message"}]}
// and stores nothing.
func TestAPIOrderErrors(t *testing.T) {
	e := newOrderEnv(t)
	org := map[string]any{"id": e.acct.orgID}
	good := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"certificate": cert("a@example.com"), "organization": org, "validity_years": 1, "payment_method": "contract"}
		if mod != nil {
			mod(m)
		}
		return m
	}
	var many []map[string]any
	for i := 0; i < 101; i++ {
		many = append(many, cert(fmt.Sprintf("user%d@example.com", i)))
	}
	huge := `{"certificate":{"emails":["a@example.com"],"csr":"` + strings.Repeat("A", 1<<20+10) + `"},"validity_years":1}`
	cases := []struct {
		name, product, ctype string
		body                 any
		status               int
		code, field, msg     string
	}{
		{"bad JSON", "secure_email_organization", "application/json", `{"certificate": {"emails": [`, 422, "invalid", "", "not valid JSON"},
		{"unknown field", "secure_email_organization", "application/json", `{"certificat": {}, "validity_years": 1}`, 422, "invalid", "", `unknown field "certificat"`},
		{"wrong type", "secure_email_organization", "application/json", `{"validity_years": "one"}`, 422, "invalid", "", "validity_years must be a whole number, not string."},
		{"wrong type nested", "secure_email_organization", "application/json", `{"certificate": {"emails": "a@example.com"}}`, 422, "invalid", "", "certificate.emails must be a list, not string."},
		{"wrong content type", "secure_email_organization", "text/plain", `{"certificate":{"emails":["a@example.com"]},"validity_years":1}`, 415, "unsupported_media_type", "", "application/json"},
		{"form content type", "secure_email_organization", "application/x-www-form-urlencoded", "validity_years=1", 415, "unsupported_media_type", "", "application/json"},
		{"unknown product", "secure_email_deluxe", "application/json", good(nil), 422, "invalid", "product_id", "Unknown product"},
		{"no validity", "secure_email_organization", "application/json", good(func(m map[string]any) { delete(m, "validity_years") }), 422, "invalid", "validity_years", "validity_years"},
		{"validity too long", "secure_email_organization", "application/json", good(func(m map[string]any) { delete(m, "validity_years"); m["validity_days"] = 2000 }), 422, "invalid", "custom_days", "1 to 1095"},
		{"past expiration", "secure_email_organization", "application/json", good(func(m map[string]any) { delete(m, "validity_years"); m["custom_expiration_date"] = "2020-01-01" }), 422, "invalid", "custom_date", "after tomorrow"},
		{"bad email", "secure_email_organization", "application/json", good(func(m map[string]any) { m["certificate"] = cert("not-an-email") }), 422, "invalid", "r0_email", "valid email address"},
		{"two emails in one certificate", "secure_email_organization", "application/json", good(func(m map[string]any) {
			m["certificate"] = map[string]any{"emails": []string{"a@example.com", "b@example.com"}}
		}), 422, "invalid", "r0_email", "exactly one address"},
		{"no recipients", "secure_email_organization", "application/json", good(func(m map[string]any) { delete(m, "certificate") }), 422, "invalid", "recipients", "at least one"},
		{"gmail for Business", "secure_email_organization", "application/json", good(func(m map[string]any) { m["certificate"] = cert("jane@gmail.com") }), 422, "invalid", "r0_email", "gmail.com is a public mail provider"},
		{"private key as CSR", "secure_email_organization", "application/json", good(func(m map[string]any) {
			m["certificate"] = map[string]any{"emails": []string{"a@example.com"}, "csr": testPrivateKeyPEM(t)}
		}), 422, "invalid", "r0_csr", "This is a private key. Never share it"},
		{"certificate as CSR", "secure_email_organization", "application/json", good(func(m map[string]any) {
			m["certificate"] = map[string]any{"emails": []string{"a@example.com"}, "csr": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}
		}), 422, "invalid", "r0_csr", "CSR"},
		{"name CN on an email-only product", "secure_email_organization", "application/json", good(func(m map[string]any) {
			m["certificate"] = map[string]any{"common_name_indicator": "name", "common_name": "Jane", "emails": []string{"a@example.com"}}
		}), 422, "invalid", "r0_cn", "email address in the common name"},
		{"bad common_name_indicator", "secure_email_organization", "application/json", good(func(m map[string]any) {
			m["certificate"] = map[string]any{"common_name_indicator": "dns", "emails": []string{"a@example.com"}}
		}), 422, "invalid", "r0_cn", "common_name_indicator"},
		{"more than 100 recipients", "secure_email_organization", "application/json", good(func(m map[string]any) { delete(m, "certificate"); m["certificates"] = many }), 422, "invalid", "recipients", "at most 100"},
		{"no organization", "secure_email_organization", "application/json", good(func(m map[string]any) { delete(m, "organization") }), 422, "invalid", "organization", "organization"},
		{"other organization id", "secure_email_organization", "application/json", good(func(m map[string]any) { m["organization"] = map[string]any{"id": 999} }), 422, "invalid", "organization", "organization"},
		{"wrong payment method", "secure_email_organization", "application/json", good(func(m map[string]any) { m["payment_method"] = "bitcoin" }), 422, "invalid", "payment_method", "payment method"},
		{"balance too low", "secure_email_organization", "application/json", good(func(m map[string]any) { m["payment_method"] = "balance" }), 422, "invalid", "payment_method", "balance (€0.00) is too low"},
		{"card without card on file", "secure_email_organization", "application/json", good(func(m map[string]any) { m["payment_method"] = "card" }), 422, "invalid", "payment_method", "no card on file"},
		{"bad additional email", "secure_email_organization", "application/json", good(func(m map[string]any) { m["additional_emails"] = []string{"ok@example.com", "nope"} }), 422, "invalid", "additional_emails", "not a valid email"},
		{"huge body", "secure_email_organization", "application/json", huge, 413, "too_large", "", ""},
		{"huge body, chunked", "secure_email_organization", "application/json", unknownLength{strings.NewReader(huge)}, 413, "too_large", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.api("POST", "/order/certificate/"+c.product, e.acct.key, c.ctype, c.body)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %.300s", r.status, c.status, r.body)
			}
			errs := apiErrorsOf(t, r)
			found := false
			for _, ae := range errs {
				if ae.Code == c.code && ae.Field == c.field && strings.Contains(ae.Message, c.msg) {
					found = true
				}
				if strings.Contains(ae.Message, "PRIVATE KEY") || strings.Contains(ae.Message, "SQL") {
					t.Fatalf("message reveals input or internals: %q", ae.Message)
				}
			}
			if !found {
				t.Fatalf("no error {%s %s %q} in %+v", c.code, c.field, c.msg, errs)
			}
		})
	}
	if n := e.countOrders(); n != 0 {
		t.Fatalf("%d orders stored by bad requests", n)
	}
	if strings.Contains(e.logs.String(), "PRIVATE KEY") || strings.Contains(e.logs.String(), "internal error") {
		t.Fatalf("logs: %s", e.logs.String())
	}
}

// The list is paged newest first with a total; bad paging is a 422.
func TestAPIOrderListPaging(t *testing.T) {
	e := newOrderEnv(t)
	var ids []int64
	for i := 0; i < 3; i++ {
		ids = append(ids, createdID(t, e.create("secure_email_organization", map[string]any{
			"certificate": cert(fmt.Sprintf("u%d@example.com", i)), "organization": map[string]any{"id": e.acct.orgID}, "validity_years": 1})))
	}
	createdID(t, e.create("secure_email_mailbox", map[string]any{"certificate": cert("x@gmail.com"), "validity_years": 1}))
	type page struct {
		Orders []apiOrderOut `json:"orders"`
		Page   struct{ Total, Limit, Offset int }
	}
	get := func(q string) page {
		t.Helper()
		r := e.api("GET", "/order/certificate"+q, e.acct.key, "", nil)
		if r.status != 200 {
			t.Fatalf("list %s: %d %s", q, r.status, r.body)
		}
		var p page
		if err := json.Unmarshal([]byte(r.body), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := get("?limit=2&product_id=secure_email_organization")
	if p.Page.Total != 3 || p.Page.Limit != 2 || len(p.Orders) != 2 || p.Orders[0].ID != ids[2] || p.Orders[1].ID != ids[1] {
		t.Fatalf("page 1: %+v", p)
	}
	if p.Orders[0].Recipients[0].Email != "u2@example.com" {
		t.Fatalf("recipients in list: %+v", p.Orders[0].Recipients)
	}
	p = get("?limit=2&offset=2&product_id=secure_email_organization")
	if p.Page.Total != 3 || len(p.Orders) != 1 || p.Orders[0].ID != ids[0] {
		t.Fatalf("page 2: %+v", p)
	}
	if p = get(""); p.Page.Total != 4 || len(p.Orders) != 4 || p.Page.Limit != 50 {
		t.Fatalf("default page: %+v", p.Page)
	}
	if p = get("?offset=10"); len(p.Orders) != 0 || !strings.Contains(e.api("GET", "/order/certificate?offset=10", e.acct.key, "", nil).body, `"orders":[]`) {
		t.Fatalf("past the end: %+v", p)
	}
	for _, q := range []string{"?limit=0", "?limit=201", "?limit=x", "?offset=-1"} {
		r := e.api("GET", "/order/certificate"+q, e.acct.key, "", nil)
		if r.status != 422 {
			t.Fatalf("%s: %d", q, r.status)
		}
		if errs := apiErrorsOf(t, r); errs[0].Field != "limit" && errs[0].Field != "offset" {
			t.Fatalf("%s: %+v", q, errs)
		}
	}
}

// PUT status canceled cancels a pending order (204), releases its
// contract commitment, and a second cancel is a 409.
func TestAPIOrderCancel(t *testing.T) {
	e := newOrderEnv(t)
	id := createdID(t, e.create("secure_email_organization", map[string]any{
		"certificates": []any{cert("a@example.com"), cert("b@example.com")}, "organization": map[string]any{"id": e.acct.orgID}, "validity_years": 1}))
	path := fmt.Sprintf("/order/certificate/%d/status", id)
	if r := e.api("PUT", path, e.acct.key, "application/json", `{"status":"issued"}`); r.status != 422 || apiErrorsOf(t, r)[0].Field != "status" {
		t.Fatalf("status issued: %d %s", r.status, r.body)
	}
	if r := e.api("PUT", path, e.acct.key, "application/json", `{"status":"canceled"}`); r.status != http.StatusNoContent {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	o, _ := e.getOrder(e.acct.key, id)
	if o.Status != "canceled" || o.Recipients[0].Status != string(portal.RecipientCancelled) || o.Recipients[1].Status != string(portal.RecipientCancelled) {
		t.Fatalf("after cancel: %+v", o)
	}
	if got := e.ledgerKinds(e.acct.admin.AccountID, id); len(got) != 2 || got[0] != "commit:contract:7800" || got[1] != "release:contract:7800" {
		t.Fatalf("ledger: %v", got)
	}
	r := e.api("PUT", path, e.acct.key, "application/json", `{"status":"canceled"}`)
	if r.status != http.StatusConflict || apiErrorsOf(t, r)[0].Code != portal.EConflict {
		t.Fatalf("second cancel: %d %s", r.status, r.body)
	}
	if got := e.ledgerKinds(e.acct.admin.AccountID, id); len(got) != 2 {
		t.Fatalf("second cancel touched the ledger: %v", got)
	}
	if r := e.api("PUT", "/order/certificate/999999/status", e.acct.key, "application/json", `{"status":"canceled"}`); r.status != 404 {
		t.Fatalf("unknown order: %d", r.status)
	}
}

// Without a key, or with a wrong one, every API route answers 401 JSON.
func TestAPIOrderNeedsKey(t *testing.T) {
	e := newOrderEnv(t)
	for _, key := range []string{"", "cd_notakey", e.acct.key + "x"} {
		for _, rt := range []struct{ method, path string }{
			{"POST", "/order/certificate/secure_email_sponsor"}, {"GET", "/order/certificate"}, {"GET", "/order/certificate/1"},
			{"PUT", "/order/certificate/1/status"}, {"GET", "/organization"}, {"GET", "/domain"},
		} {
			r := e.api(rt.method, rt.path, key, "application/json", `{"status":"canceled"}`)
			if r.status != http.StatusUnauthorized || apiErrorsOf(t, r)[0].Code != portal.EUnauthorized {
				t.Fatalf("%s %s with key %q: %d %s", rt.method, rt.path, key, r.status, r.body)
			}
		}
	}
	// a session cookie is no API credential
	c := e.client()
	c.signIn("admin@example.com", e.acct.pw)
	if r := c.get("/api/v1/order/certificate"); r.status != http.StatusUnauthorized {
		t.Fatalf("cookie on the API: %d", r.status)
	}
	if e.countOrders() != 0 {
		t.Fatal("an unauthenticated request stored an order")
	}
}

// Another account's order ids answer 404 on GET and PUT (and stay
// pending), and its orders, organizations and domains are not listed.
func TestAPIOrderOtherAccount404(t *testing.T) {
	e := newOrderEnv(t)
	other := e.newAccount("Rival Corp", "admin@rival.test", "rival.test", true)
	id := createdID(t, e.create("secure_email_organization", map[string]any{
		"certificate": cert("a@example.com"), "organization": map[string]any{"id": e.acct.orgID}, "validity_years": 1}))
	for _, r := range []resp{
		e.api("GET", fmt.Sprintf("/order/certificate/%d", id), other.key, "", nil),
		e.api("PUT", fmt.Sprintf("/order/certificate/%d/status", id), other.key, "application/json", `{"status":"canceled"}`),
	} {
		if r.status != http.StatusNotFound || apiErrorsOf(t, r)[0].Code != portal.ENotFound {
			t.Fatalf("other account: %d %s", r.status, r.body)
		}
		if strings.Contains(r.body, "a@example.com") {
			t.Fatal("404 reveals the order")
		}
	}
	if o, _ := e.getOrder(e.acct.key, id); o.Status != "pending" {
		t.Fatalf("the other account's PUT changed the order: %s", o.Status)
	}
	if r := e.api("GET", "/order/certificate", other.key, "", nil); !strings.Contains(r.body, `"orders":[]`) || !strings.Contains(r.body, `"total":0`) {
		t.Fatalf("other account's list: %s", r.body)
	}
	// ordering on the first account's organization from the other account
	r := e.api("POST", "/order/certificate/secure_email_organization", other.key, "application/json",
		map[string]any{"certificate": cert("x@rival.test"), "organization": map[string]any{"id": e.acct.orgID}, "validity_years": 1})
	if r.status != 422 || apiErrorsOf(t, r)[0].Field != "organization" {
		t.Fatalf("other account's organization accepted: %d %s", r.status, r.body)
	}
	for _, p := range []string{"/order/certificate/abc", "/order/certificate/0", "/order/certificate/-1"} {
		if r := e.api("GET", p, e.acct.key, "", nil); r.status != 404 {
			t.Fatalf("%s: %d", p, r.status)
		}
	}
}

// The organization and domain lists show the account's own records with
// their validation state and RFC 3339 times.
func TestAPIOrgAndDomainLists(t *testing.T) {
	e := newOrderEnv(t)
	e.newAccount("Rival Corp", "admin@rival.test", "rival.test", false)
	var orgs struct {
		Organizations []struct {
			ID           int64
			Name, Status string
			ValidatedAt  *string `json:"validated_at"`
			ExpiresAt    *string `json:"expires_at"`
		}
	}
	r := e.api("GET", "/organization", e.acct.key, "", nil)
	if err := json.Unmarshal([]byte(r.body), &orgs); r.status != 200 || err != nil {
		t.Fatalf("organizations: %d %s", r.status, r.body)
	}
	if len(orgs.Organizations) != 1 {
		t.Fatalf("organizations: %s", r.body)
	}
	o := orgs.Organizations[0]
	if o.ID != e.acct.orgID || o.Name != "Example Corp B.V." || o.Status != "validated" || o.ValidatedAt == nil ||
		*o.ValidatedAt != "2026-11-25T12:00:00Z" || o.ExpiresAt == nil || *o.ExpiresAt != "2029-02-27T12:00:00Z" {
		t.Fatalf("organization: %s", r.body)
	}
	var doms struct {
		Domains []struct {
			ID           int64
			Name, Status string
			Organization struct{ ID int64 }
			ValidatedAt  string `json:"validated_at"`
			ExpiresAt    string `json:"expires_at"`
		}
	}
	r = e.api("GET", "/domain", e.acct.key, "", nil)
	if err := json.Unmarshal([]byte(r.body), &doms); r.status != 200 || err != nil || len(doms.Domains) != 1 {
		t.Fatalf("domains: %d %s", r.status, r.body)
	}
	d := doms.Domains[0]
	if d.Name != "example.com" || d.Status != "validated" || d.Organization.ID != e.acct.orgID || d.ValidatedAt != "2026-11-25T12:00:00Z" || d.ExpiresAt != "2027-12-28T12:00:00Z" {
		t.Fatalf("domain: %s", r.body)
	}
	// 398 days later the domain validation has expired, the organization's not
	e.clock.Advance(portal.DomainValidationReuse)
	if r := e.api("GET", "/domain", e.acct.key, "", nil); !strings.Contains(r.body, `"status":"expired"`) {
		t.Fatalf("expired domain: %s", r.body)
	}
	if r := e.api("GET", "/organization", e.acct.key, "", nil); !strings.Contains(r.body, `"status":"validated"`) {
		t.Fatalf("organization after 398 days: %s", r.body)
	}
}

// Every CSR intake error key of the CA has an English and a Dutch message
// that differ (the order form shows them beside the CSR field).
func TestCSRErrorKeysTranslated(t *testing.T) {
	for _, k := range []string{ca.KeyCSREmpty, ca.KeyCSRTooLarge, ca.KeyCSRPrivateKey, ca.KeyCSRCertificate, ca.KeyCSRMultiple, ca.KeyCSRParse,
		ca.KeyCSRBadSignature, ca.KeyCSRKeyType, ca.KeyCSRRSASize, ca.KeyCSRRSAExponent, ca.KeyCSRWeakKey, ca.KeyCSREcCurve} {
		en, nl := i18n.For("en").T(k), i18n.For("nl").T(k)
		if en == k || nl == k || en == nl {
			t.Errorf("%s: en %q, nl %q", k, en, nl)
		}
	}
}
