package handlers

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"certdesk/internal/portal"
)

func TestSignInSignOutEndsSession(t *testing.T) {
	e := newTestEnv(t)
	e.addUser("admin@example.com", portal.RoleAccountAdmin, "Example Corp")
	c := e.client()
	c.signIn("admin@example.com", "correct horse battery staple")
	r := c.get("/dashboard")
	if r.status != 200 || !strings.Contains(r.body, "Example Corp") || !strings.Contains(r.body, "Request a certificate") {
		t.Fatalf("dashboard: %d", r.status)
	}
	// copy the cookie before signing out
	old := c.cookies()
	if len(old) == 0 {
		t.Fatal("no cookie")
	}
	found := false
	for _, ck := range old {
		found = found || (ck.Name == cookieName && ck.Value != "")
	}
	if !found {
		t.Fatal("no session cookie after sign-in")
	}
	if r := c.post("/dashboard", "/signout", nil); r.status != http.StatusSeeOther {
		t.Fatalf("signout: %d", r.status)
	}
	if r := c.get("/dashboard"); r.status != http.StatusSeeOther {
		t.Fatalf("dashboard after signout: %d", r.status)
	}
	// the copied old cookie no longer opens the dashboard
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(e.http.URL)
	jar.SetCookies(u, old)
	c2 := &client{e: e, jar: jar, hc: &http.Client{Jar: jar, CheckRedirect: c.hc.CheckRedirect}}
	if r := c2.get("/dashboard"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/signin" {
		t.Fatalf("old cookie still works: %d", r.status)
	}
}

func TestSignInNewSessionID(t *testing.T) {
	e := newTestEnv(t)
	e.addUser("u@example.com", portal.RoleUser, "Acme")
	c := e.client()
	c.get("/signin")
	before := c.cookies()[0].Value
	c.signIn("u@example.com", "correct horse battery staple")
	after := c.cookies()[0].Value
	if before == after {
		t.Fatal("session cookie not renewed at sign-in")
	}
}

func TestWrongPasswordKeepsEmailAndRateLimits(t *testing.T) {
	e := newTestEnv(t)
	e.addUser("admin@example.com", portal.RoleAccountAdmin, "Example Corp")
	c := e.client()
	for i := 0; i < 5; i++ {
		r := c.post("/signin", "/signin", url.Values{"email": {"admin@example.com"}, "password": {"wrong password!"}})
		if r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, r.status)
		}
		if !strings.Contains(r.body, `value="admin@example.com"`) || !strings.Contains(r.body, "not correct") {
			t.Fatalf("form not kept or no message: %s", r.body)
		}
	}
	// sixth attempt, even with the right password, is limited
	r := c.post("/signin", "/signin", url.Values{"email": {"admin@example.com"}, "password": {"correct horse battery staple"}})
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "Too many failed sign-ins") {
		t.Fatalf("not rate limited: %d", r.status)
	}
	// after the window it works again
	e.clock.Advance(16 * time.Minute)
	c.signIn("admin@example.com", "correct horse battery staple")
}

func TestPostWithoutCSRFIsForbidden(t *testing.T) {
	e := newTestEnv(t)
	e.addUser("admin@example.com", portal.RoleAccountAdmin, "Example Corp")
	c := e.client()
	c.get("/signin")
	r := c.do("POST", "/signin", url.Values{"email": {"admin@example.com"}, "password": {"correct horse battery staple"}}, nil)
	if r.status != http.StatusForbidden {
		t.Fatalf("no token: %d", r.status)
	}
	r = c.do("POST", "/signin", url.Values{"csrf": {"forged"}, "email": {"a"}, "password": {"b"}}, nil)
	if r.status != http.StatusForbidden {
		t.Fatalf("forged token: %d", r.status)
	}
	c.signIn("admin@example.com", "correct horse battery staple")
	if r := c.do("POST", "/signout", url.Values{}, nil); r.status != http.StatusForbidden {
		t.Fatalf("signout without token: %d", r.status)
	}
}

func TestIdleAndAbsoluteTimeouts(t *testing.T) {
	e := newTestEnv(t)
	e.addUser("u@example.com", portal.RoleUser, "Acme")
	c := e.client()
	c.signIn("u@example.com", "correct horse battery staple")
	e.clock.Advance(IdleTimeout - time.Minute)
	if r := c.get("/dashboard"); r.status != 200 {
		t.Fatalf("within idle: %d", r.status)
	}
	e.clock.Advance(IdleTimeout + time.Minute)
	if r := c.get("/dashboard"); r.status != http.StatusSeeOther {
		t.Fatalf("after idle timeout: %d", r.status)
	}
	// absolute: stay active, but pass 12 hours
	c.signIn("u@example.com", "correct horse battery staple")
	for i := 0; i < 13; i++ {
		e.clock.Advance(time.Hour)
		r := c.get("/dashboard")
		if i < 11 && r.status != 200 {
			t.Fatalf("hour %d: %d", i+1, r.status)
		}
		if i == 12 && r.status != http.StatusSeeOther {
			t.Fatalf("after absolute timeout: %d", r.status)
		}
	}
}

func TestSecurityHeadersAndCookieFlags(t *testing.T) {
	e := newTestEnv(t)
	c := e.client()
	r := c.get("/signin")
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self' 'wasm-unsafe-eval'", "frame-ancestors 'none'", "default-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP lacks %q: %s", want, csp)
		}
	}
	for _, bad := range []string{"unsafe-inline", "'unsafe-eval'"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP has %s", bad)
		}
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Referrer-Policy") == "" {
		t.Error("missing headers")
	}
	sc := r.header.Get("Set-Cookie")
	if !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") {
		t.Errorf("cookie flags: %s", sc)
	}
	if strings.Contains(strings.ToLower(r.body), "<script>") {
		t.Error("inline script on the page")
	}
}

func TestErrorPagesRevealNothing(t *testing.T) {
	e := newTestEnv(t)
	c := e.client()
	r := c.get("/no/such/page")
	if r.status != 404 || !strings.Contains(r.body, "Page not found") {
		t.Fatalf("404: %d", r.status)
	}
	r = c.get("/dashboard")
	if r.status != http.StatusSeeOther {
		t.Fatalf("anonymous dashboard: %d", r.status)
	}
	for _, leak := range []string{"goroutine", ".go:", "sql", "SQLITE"} {
		if strings.Contains(r.body, leak) {
			t.Errorf("leak %q", leak)
		}
	}
}

func TestLanguageFromHeaderAndSwitch(t *testing.T) {
	e := newTestEnv(t)
	c := e.client()
	r := c.do("GET", "/signin", nil, map[string]string{"Accept-Language": "nl-NL,nl;q=0.9"})
	if !strings.Contains(r.body, "Aanmelden") || !strings.Contains(r.body, `lang="nl"`) {
		t.Fatal("Accept-Language nl not honoured")
	}
	r = c.do("GET", "/lang/en?next=/signin", nil, map[string]string{"Accept-Language": "nl"})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/signin" {
		t.Fatalf("switch: %d %s", r.status, r.header.Get("Location"))
	}
	r = c.do("GET", "/signin", nil, map[string]string{"Accept-Language": "nl"})
	if !strings.Contains(r.body, "Sign in") || strings.Contains(r.body, "Aanmelden") {
		t.Fatal("switch not remembered over Accept-Language")
	}
	// no open redirect
	if r := c.get("/lang/nl?next=//evil.example"); r.header.Get("Location") != "/" {
		t.Fatalf("open redirect: %s", r.header.Get("Location"))
	}
}

func TestSetupLinkCreatesCAAdminOnce(t *testing.T) {
	e := newTestEnv(t)
	ctx := t.Context()
	tok, err := e.srv.Identity.NewSetupLink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	path := "/setup/" + tok
	// bad input keeps the form
	r := c.post(path, path, url.Values{"name": {"Casey"}, "email": {"not-an-email"}, "password": {"short"}, "confirm": {"short"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `value="Casey"`) || !strings.Contains(r.body, "valid email") {
		e.dumpLogs()
		t.Fatalf("bad input: %d", r.status)
	}
	r = c.post(path, path, url.Values{"name": {"Casey"}, "email": {"casey@ca.test"}, "password": {"a long enough password"}, "confirm": {"a long enough password"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("setup: %d %s", r.status, r.body)
	}
	if r := c.get("/dashboard"); r.status != 200 || !strings.Contains(r.body, "Validation queue") {
		t.Fatalf("CA admin dashboard: %d", r.status)
	}
	if r := e.client().get(path); r.status != http.StatusGone || !strings.Contains(r.body, "has been used") {
		t.Fatalf("reuse: %d", r.status)
	}
	if r := e.client().get("/setup/unknowntoken"); r.status != http.StatusNotFound {
		t.Fatalf("unknown: %d", r.status)
	}
	tok2, _ := e.srv.Identity.NewSetupLink(ctx)
	e.clock.Advance(25 * time.Hour)
	if r := e.client().get("/setup/" + tok2); r.status != http.StatusGone || !strings.Contains(r.body, "expired") {
		t.Fatalf("expired: %d", r.status)
	}
}

func TestRequestLogHasNoSecrets(t *testing.T) {
	e := newTestEnv(t)
	tok, _ := e.srv.Identity.NewSetupLink(t.Context())
	e.client().get("/setup/" + tok)
	e.addUser("admin@example.com", portal.RoleAccountAdmin, "Example Corp")
	e.client().signIn("admin@example.com", "correct horse battery staple")
	logs := e.logs.String()
	if strings.Contains(logs, tok) || strings.Contains(logs, "correct horse") {
		t.Fatal("secret in logs")
	}
	if !strings.Contains(logs, "request_id=") || !strings.Contains(logs, "route=/setup/:token") {
		t.Fatalf("request log lacks id or route: %s", logs)
	}
}

func TestScriptRequestsGetJSONErrors(t *testing.T) {
	e := newTestEnv(t)
	c := e.client()
	c.get("/signin")
	r := c.do("POST", "/keygen/exchange", nil, map[string]string{"Content-Type": "application/json"})
	if r.status != http.StatusForbidden || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || !strings.Contains(r.body, `"errors"`) {
		t.Fatalf("CSRF refusal of a script request: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
}
