package e2e

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"certdesk/e2e/harness"
)

// TestHarnessSmoke drives the real certdesk binary in Chromium: the
// sign-in page renders, the demo users can sign in, requests are recorded,
// axe-core runs under the page's real CSP, and screenshots are written.
func TestHarnessSmoke(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{})

	resp, err := http.Get(srv.URL("/healthz"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}
	for _, role := range []string{harness.RoleAccountAdmin, harness.RoleValidationAgent, harness.RoleCAAdmin} {
		c := srv.User(t, role)
		if c.Email == "" || len(c.Password) < 8 {
			t.Errorf("dev credentials for %s look wrong: %+v", role, c)
		}
	}

	page, _ := harness.NewPage(t, srv)
	reqs := harness.RecordRequests(page)
	if status := harness.Goto(t, page, "/signin"); status != http.StatusOK {
		t.Fatalf("/signin: HTTP %d", status)
	}
	title, err := page.Title()
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(title) == "" {
		t.Fatal("/signin has an empty <title>")
	}

	// Axe must work with the server's CSP in force: a deliberately broken
	// image must be reported, and the page's own findings are logged.
	if _, err := page.Evaluate(`() => { const i = document.createElement("img"); i.src = "/static/none.png"; i.id = "axe-probe"; document.body.appendChild(i); }`); err != nil {
		t.Fatal(err)
	}
	vs := harness.Axe(t, page)
	found := false
	for _, v := range vs {
		if v.ID == "image-alt" && strings.Contains(v.Nodes[0].Target, "axe-probe") {
			found = true
		} else {
			t.Logf("axe on /signin: %s", v)
		}
	}
	if !found {
		t.Fatalf("axe did not report the image without alt text; got:\n%s", harness.FormatViolations(vs))
	}

	admin := srv.User(t, harness.RoleAccountAdmin)
	harness.SignIn(t, page, srv, admin.Email, admin.Password)
	if strings.HasSuffix(page.URL(), "/signin") {
		t.Fatalf("still on %s after signing in", page.URL())
	}
	posts := reqs.Containing([]byte("password=" + admin.Password))
	if len(posts) != 1 || posts[0].Method != http.MethodPost || !strings.HasSuffix(posts[0].URL, "/signin") {
		t.Fatalf("request log: want one POST /signin carrying the password, got %+v", posts)
	}
	if len(reqs.All()) < 3 {
		t.Fatalf("request log has %d requests, want the page, its assets and the POST", len(reqs.All()))
	}

	shot, err := harness.SaveScreenshot(page, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(shot)
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s is not a PNG (%v)", shot, err)
	}
}

// TestHarnessSetupAndRestart starts without --dev: no demo users, and the
// server logs a one-time setup link. The CA administrator made through it
// is still there after Restart (same data directory), on the same port,
// and no new setup link is logged. Kill stops the server at once.
func TestHarnessSetupAndRestart(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{NoDev: true})
	if len(srv.Users) != 0 {
		t.Fatalf("demo users without --dev: %v", srv.Users)
	}
	if _, err := srv.WaitForOutput("SETUP LINK", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	link := srv.SetupLink()
	if !strings.HasPrefix(link, srv.BaseURL+"/setup/") {
		t.Fatalf("setup link %q does not start with %s/setup/", link, srv.BaseURL)
	}

	page, _ := harness.NewPage(t, srv)
	if status := harness.Goto(t, page, link); status != http.StatusOK {
		t.Fatalf("setup link: HTTP %d", status)
	}
	const email, password = "root@certdesk.test", "a long and unguessable passphrase 7"
	for sel, v := range map[string]string{"#name": "Rita Root", "#email": email, "#password": password, "#confirm": password} {
		if err := page.Locator(sel).Fill(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := page.Locator("button[type=submit]").Click(); err != nil {
		t.Fatal(err)
	}
	if err := page.WaitForURL("**/dashboard"); err != nil {
		t.Fatalf("setup did not lead to the dashboard: %v", err)
	}

	baseURL := srv.BaseURL
	srv.Restart(t)
	if srv.BaseURL != baseURL {
		t.Fatalf("base URL changed across restart: %s -> %s", baseURL, srv.BaseURL)
	}
	if n := strings.Count(srv.Output(), "=== harness: start"); n != 2 {
		t.Fatalf("output shows %d runs, want 2", n)
	}
	if l := srv.SetupLink(); l != "" {
		t.Fatalf("a CA administrator exists, yet the restarted server logged a setup link: the data directory was not kept")
	}
	page2, _ := harness.NewPage(t, srv)
	harness.SignIn(t, page2, srv, email, password)

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if srv.Running() {
		t.Fatal("still running after Kill")
	}
	if _, err := http.Get(srv.URL("/healthz")); err == nil {
		t.Fatal("/healthz answers after Kill")
	}
}
