package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// standIn mimics the dev mailbox contract: a CSRF-protected sign-in form
// that sets a session cookie, and /dev/mailbox.json for that session only.
type standIn struct {
	creds    Credentials
	sessions atomic.Int32 // sign-ins that succeeded
	msgs     atomic.Value // []Message
}

func (s *standIn) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /signin", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "pre", Value: "csrf-cookie", Path: "/"})
		fmt.Fprint(w, `<form method="post" action="/signin"><input type="hidden" name="csrf" value="tok&amp;1"/>`+
			`<input id="email" name="email"><input id="password" name="password" type="password"></form>`)
	})
	mux.HandleFunc("POST /signin", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("pre")
		if err != nil || c.Value != "csrf-cookie" || r.FormValue("csrf") != "tok&1" {
			http.Error(w, "csrf", http.StatusForbidden)
			return
		}
		if r.FormValue("email") != s.creds.Email || r.FormValue("password") != s.creds.Password {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		s.sessions.Add(1)
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "ok", Path: "/"})
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /dev/mailbox.json", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("sid"); err != nil || c.Value != "ok" {
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(s.msgs.Load())
	})
	return mux
}

func TestMailAgainstStandIn(t *testing.T) {
	si := &standIn{creds: Credentials{Email: "ca@x.test", Password: "pw"}}
	si.msgs.Store([]Message{})
	ts := httptest.NewServer(si.handler())
	defer ts.Close()
	srv := &Server{BaseURL: ts.URL, Users: map[string]Credentials{RoleCAAdmin: si.creds}}

	if got := srv.Mail(t); len(got) != 0 {
		t.Fatalf("empty mailbox: got %v", got)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		si.msgs.Store([]Message{
			{ID: 1, To: "Ann <ann@example.com>", Kind: "keygen_link", Subject: "old", Text: "https://x/keygen/old"},
			{ID: 2, To: "bob@example.com", Kind: "keygen_link", Subject: "bob"},
			{ID: 3, To: "ann@example.com", Kind: "dcv", Subject: "dcv"},
			{ID: 4, To: "ANN@example.com", Kind: "keygen_link", Subject: "new",
				Text:        "Open http://127.0.0.1:1/keygen/abc?x=1&y=2. Thanks",
				Attachments: []Attachment{{Filename: "a.p7b", ContentType: "application/pkcs7-mime"}}},
		})
	}()
	m := srv.WaitForMail(t, "ann@example.com", "keygen_link", 5*time.Second)
	if m.ID != 4 || m.Subject != "new" || len(m.Attachments) != 1 || m.Attachments[0].Filename != "a.p7b" {
		t.Fatalf("want the newest keygen_link mail to ann (#4), got %+v", m)
	}
	if got := ExtractLink(m.Text, "/keygen/"); got != "http://127.0.0.1:1/keygen/abc?x=1&y=2" {
		t.Fatalf("ExtractLink: %q", got)
	}
	if got := srv.WaitForMail(t, "ann@example.com", "", time.Second); got.ID != 4 {
		t.Fatalf("any kind: want #4, got #%d", got.ID)
	}
	if n := si.sessions.Load(); n != 1 {
		t.Fatalf("signed in %d times; the session should be kept", n)
	}
}

func TestMailWrongPassword(t *testing.T) {
	si := &standIn{creds: Credentials{Email: "ca@x.test", Password: "pw"}}
	ts := httptest.NewServer(si.handler())
	defer ts.Close()
	srv := &Server{BaseURL: ts.URL, Users: map[string]Credentials{RoleCAAdmin: {Email: "ca@x.test", Password: "nope"}}}
	if _, err := srv.fetchMail(); err == nil {
		t.Fatal("fetchMail succeeded with a wrong password")
	}
}

func TestExtractLink(t *testing.T) {
	html := `<p><a href="https://certs.example/validate/dcv/t0k?lang=nl&amp;x=1">Confirm</a></p>
	<a href="https://certs.example/keygen/k3y">Generate</a> (https://certs.example/keygen/k3y).`
	for _, c := range []struct{ prefix, want string }{
		{"/validate/", "https://certs.example/validate/dcv/t0k?lang=nl&x=1"},
		{"/keygen/", "https://certs.example/keygen/k3y"},
		{"/setup/", ""},
	} {
		if got := ExtractLink(html, c.prefix); got != c.want {
			t.Errorf("ExtractLink(%q) = %q, want %q", c.prefix, got, c.want)
		}
	}
}

func TestParseDevUsers(t *testing.T) {
	out := "time=x level=INFO msg=hi\nDEV SIGN-IN role=ca_admin email=ca@x.test password=Abc123\n" +
		"DEV SIGN-IN role=account_admin email=a@example.com password=Zz9\n"
	u := parseDevUsers(out)
	if u[RoleCAAdmin] != (Credentials{"ca@x.test", "Abc123"}) || u[RoleAccountAdmin].Password != "Zz9" || len(u) != 2 {
		t.Fatalf("parseDevUsers: %+v", u)
	}
}
