package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"certdesk/e2e/harness"
)

// Bad input never gets a 500 or leaks internals: every form endpoint and
// every page with an id is sent empty, huge, hostile and wrong-type input
// by a signed-in account administrator and by a validation agent, against
// the real server.
func TestBadInputNeverFails(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Env: []string{"CERTDESK_DNS_RESOLVER=127.0.0.1:1"}})
	huge := strings.Repeat("A", 40<<10) // 38 fields x 40 KiB stays under the 2 MiB body limit
	hostile := []string{"", huge, "<script>alert(1)</script>", "' OR 1=1 --", "\x00\x01\xff", "-1", "99999999999999999999",
		"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----", "../../etc/passwd", "%00"}
	fields := []string{"email", "password", "name", "legal_name", "assumed_name", "country", "phone", "domain", "organization",
		"method", "code", "reason", "notes", "amount", "card_number", "card_expiry", "card_cvc", "card_name", "product",
		"validity", "custom_date", "custom_days", "recipients", "r0_email", "r0_name", "r0_cn", "r0_csr", "r0_csrmode",
		"payment_method", "agree", "action", "to", "return", "confirm", "token", "csr", "registration"}
	ids := []string{"1", "0", "-5", "abc", "99999999999999999999", "%2e%2e"}
	posts := []string{"/account/apikeys", "/account/apikeys/:id/revoke", "/account/card", "/account/deposit", "/certificates/:id/revoke",
		"/domains", "/domains/:id/check", "/domains/:id/method", "/mailboxes/resend", "/orders/:id/cancel",
		"/orders/:id/recipients/:id/keygen-link", "/orders/new", "/organizations/:id/code", "/organizations/:id/edit",
		"/organizations/:id/submit", "/organizations/new", "/verify/domain/:id", "/verify/mailbox/:id",
		"/staff/organizations/:id/call-completed", "/staff/organizations/:id/left-message", "/staff/organizations/:id/reject"}
	gets := []string{"/orders/:id", "/certificates/:id", "/certificates/:id/download/pem", "/certificates/:id/download/xyz",
		"/domains/:id", "/organizations/:id", "/organizations/:id/edit", "/staff/organizations/:id", "/keygen/:id",
		"/verify/domain/:id", "/verify/mailbox/:id", "/setup/:id", "/orders?status=:id&product=:id&email=:id&offset=:id",
		"/lang/:id?next=:id", "/account/deposit?return=:id"}

	for _, role := range []string{harness.RoleAccountAdmin, harness.RoleValidationAgent} {
		c := newHTTPClient(t, srv, role)
		counts := map[int]int{}
		defer func() { t.Logf("%s: statuses %v", role, counts) }()
		check := func(method, path string, form url.Values) {
			t.Helper()
			status, body := c.do(t, method, path, form)
			counts[status]++
			if status >= 500 {
				t.Errorf("%s %s %s: %d", role, method, path, status)
			}
			for _, leak := range []string{"goroutine ", "SQL logic", "sqlite", ".go:", "panic"} {
				if strings.Contains(body, leak) {
					t.Errorf("%s %s %s: body leaks %q", role, method, path, leak)
				}
			}
		}
		for _, p := range posts {
			for _, id := range ids[:3] {
				path := strings.ReplaceAll(p, ":id", id)
				check("POST", path, url.Values{})
				for _, v := range hostile {
					form := url.Values{}
					for _, f := range fields {
						form.Set(f, v)
					}
					check("POST", path, form)
				}
			}
		}
		for _, g := range gets {
			for _, id := range ids {
				check("GET", strings.ReplaceAll(g, ":id", url.QueryEscape(id)), nil)
			}
		}
	}
}

type httpClient struct {
	srv  *harness.Server
	hc   *http.Client
	csrf string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func newHTTPClient(t *testing.T, srv *harness.Server, role string) *httpClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &httpClient{srv: srv, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	_, body := c.do(t, "GET", "/signin", nil)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no csrf token on /signin")
	}
	c.csrf = m[1]
	u := srv.User(t, role)
	if st, _ := c.do(t, "POST", "/signin", url.Values{"email": {u.Email}, "password": {u.Password}}); st != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %d", role, st)
	}
	// the session's token after sign-in
	_, body = c.do(t, "GET", "/dashboard", nil)
	if m := csrfField.FindStringSubmatch(body); m != nil {
		c.csrf = m[1]
	}
	return c
}

func (c *httpClient) do(t *testing.T, method, path string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		form.Set("csrf", c.csrf)
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.srv.URL(path), body)
	if err != nil {
		return 400, "" // a path the client itself refuses to send
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}
