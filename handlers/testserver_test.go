package handlers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"certdesk/internal/identity"
	"certdesk/internal/portal"
	"certdesk/store"
)

// testEnv is a real server (real SQLite file, fixed clock) behind httptest.
type testEnv struct {
	t     *testing.T
	srv   *Server
	http  *httptest.Server
	db    *store.DB
	clock *portal.FixedClock
	logs  *strings.Builder
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	clock := portal.NewFixedClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logs := &strings.Builder{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	keys := [][]byte{[]byte(strings.Repeat("k", 64)), []byte(strings.Repeat("b", 32))}
	s := New(Config{BaseURL: "http://127.0.0.1"}, Deps{DB: db, Identity: &identity.Service{Store: db, Clock: clock}, Clock: clock, Log: log, SessionKeys: keys})
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &testEnv{t: t, srv: s, http: hs, db: db, clock: clock, logs: logs}
}

// addUser creates a user with a known password.
func (e *testEnv) addUser(email string, role portal.Role, accountName string) (portal.User, string) {
	e.t.Helper()
	ctx := context.Background()
	u := portal.User{Email: email, Name: "Test " + string(role), Role: role}
	if !role.IsStaff() {
		a, err := e.db.AccountByName(ctx, accountName)
		if err != nil {
			a, err = e.db.CreateAccount(ctx, accountName)
			if err != nil {
				e.t.Fatal(err)
			}
		}
		u.AccountID = a.ID
	}
	pw := "correct horse battery staple"
	var err error
	if u.PasswordHash, err = identity.HashPassword(pw); err != nil {
		e.t.Fatal(err)
	}
	if u, err = e.db.CreateUser(ctx, u); err != nil {
		e.t.Fatal(err)
	}
	return u, pw
}

// client is a browser-like HTTP client with its own cookie jar that does
// not follow redirects.
type client struct {
	e   *testEnv
	hc  *http.Client
	jar *cookiejar.Jar
}

func (e *testEnv) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, jar: jar, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type resp struct {
	status int
	body   string
	header http.Header
}

func (c *client) do(method, path string, form url.Values, hdr map[string]string) resp {
	c.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.e.http.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	r, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{status: r.StatusCode, body: string(b), header: r.Header}
}

func (c *client) get(path string) resp { return c.do("GET", path, nil, nil) }

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf fetches a page and returns its CSRF token.
func (c *client) csrf(path string) string {
	c.e.t.Helper()
	r := c.get(path)
	m := csrfRe.FindStringSubmatch(r.body)
	if m == nil {
		c.e.t.Fatalf("no csrf token on %s (status %d)", path, r.status)
	}
	return m[1]
}

// post submits a form with the CSRF token taken from page from.
func (c *client) post(from, path string, form url.Values) resp {
	c.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", c.csrf(from))
	return c.do("POST", path, form, nil)
}

func (c *client) signIn(email, pw string) {
	c.e.t.Helper()
	r := c.post("/signin", "/signin", url.Values{"email": {email}, "password": {pw}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/dashboard" {
		c.e.t.Fatalf("sign-in failed: %d %s", r.status, r.body)
	}
}

func (c *client) cookies() []*http.Cookie {
	u, _ := url.Parse(c.e.http.URL)
	return c.jar.Cookies(u)
}

func (e *testEnv) dumpLogs() { e.t.Log(e.logs.String()) }
