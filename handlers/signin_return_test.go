package handlers

import (
	"net/http"
	"net/url"
	"testing"

	"certdesk/internal/portal"
)

// A page asked for while signed out (the link of a "certificate issued"
// notice) is where signing in leads, once; a download is not (the browser
// would stay on the sign-in form), and neither is a page asked for before
// an earlier sign-in.
func TestSignInReturnsToTheRequestedPage(t *testing.T) {
	e := newTestEnv(t)
	e.addUser("admin@example.com", portal.RoleAccountAdmin, "Example Corp")
	signIn := func(c *client) string {
		t.Helper()
		r := c.post("/signin", "/signin", url.Values{"email": {"admin@example.com"}, "password": {"correct horse battery staple"}})
		if r.status != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", r.status)
		}
		return r.header.Get("Location")
	}

	c := e.client()
	if r := c.get("/certificates/7?x=1"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/signin" {
		t.Fatalf("signed out: %d %s", r.status, r.header.Get("Location"))
	}
	if loc := signIn(c); loc != "/certificates/7?x=1" {
		t.Errorf("after sign-in: %q, want the page asked for", loc)
	}
	c.post("/dashboard", "/signout", nil)
	if loc := signIn(c); loc != "/dashboard" {
		t.Errorf("second sign-in: %q, want /dashboard (the page is used once)", loc)
	}

	d := e.client()
	d.get("/certificates/7/download/pem")
	if loc := signIn(d); loc != "/dashboard" {
		t.Errorf("after a download asked for signed out: %q, want /dashboard", loc)
	}
}

// localPath accepts only this site's paths: no other host however it is
// spelled to a browser.
func TestLocalPathRefusesOtherHosts(t *testing.T) {
	for p, want := range map[string]bool{
		"/certificates/7": true, "/orders?status=pending": true,
		"": false, "https://evil.example/": false, "//evil.example": false, "/\\evil.example": false,
		"\\\\evil.example": false, "/\t/evil.example": false, "/\n/evil.example": false, "evil.example": false,
		"/ /evil.example": false,
	} {
		if got := localPath(p); got != want {
			t.Errorf("localPath(%q) = %v, want %v", p, got, want)
		}
	}
}
