package e2e

// Foundation (issue 2, point 9): the real binary in Chromium. First-run
// setup, the demo administrator's dashboard in English and Dutch, sign-out
// that ends the session for a copied cookie, a wrong password, CSRF,
// axe-core on the sign-in page and the dashboard, and an email through the
// outbox to the dev mailbox and to a real SMTP server.
//
// The HTTP-level details (cookie flags, headers, timeouts, rate limits) are
// in handlers/auth_test.go; these tests drive the browser.

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mxschmitt/playwright-go"

	"certdesk/e2e/harness"
)

const fndSessionCookie = "certdesk_session"

var (
	fndNavEN = []string{"Dashboard", "Request a certificate", "Orders", "Certificates", "Organizations", "Domains", "Account"}
	fndNavNL = []string{"Dashboard", "Een certificaat aanvragen", "Orders", "Certificaten", "Organisaties", "Domeinen", "Account"}
)

// fndText returns the trimmed inner text of the first element matching sel.
func fndText(t *testing.T, page playwright.Page, sel string) string {
	t.Helper()
	s, err := page.Locator(sel).First().InnerText()
	if err != nil {
		t.Fatalf("%s on %s: %v", sel, page.URL(), err)
	}
	return strings.TrimSpace(s)
}

// fndTexts returns the trimmed inner texts of every element matching sel.
func fndTexts(t *testing.T, page playwright.Page, sel string) []string {
	t.Helper()
	all, err := page.Locator(sel).AllInnerTexts()
	if err != nil {
		t.Fatalf("%s on %s: %v", sel, page.URL(), err)
	}
	for i := range all {
		all[i] = strings.TrimSpace(all[i])
	}
	return all
}

func fndAttr(t *testing.T, page playwright.Page, sel, name string) string {
	t.Helper()
	v, err := page.Locator(sel).First().GetAttribute(name)
	if err != nil {
		t.Fatalf("%s[%s] on %s: %v", sel, name, page.URL(), err)
	}
	return v
}

func fndPath(t *testing.T, page playwright.Page) string {
	t.Helper()
	u, err := url.Parse(page.URL())
	if err != nil {
		t.Fatalf("page URL %q: %v", page.URL(), err)
	}
	return u.Path
}

func fndFill(t *testing.T, page playwright.Page, sel, value string) {
	t.Helper()
	if err := page.Locator(sel).Fill(value); err != nil {
		t.Fatalf("fill %s: %v", sel, err)
	}
}

// fndSubmit clicks sel and waits for the page to arrive at path.
func fndSubmit(t *testing.T, page playwright.Page, sel, path string) {
	t.Helper()
	if err := page.Locator(sel).Click(); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
	if err := page.WaitForURL(func(u string) bool {
		pu, err := url.Parse(u)
		return err == nil && pu.Path == path
	}); err != nil {
		t.Fatalf("after clicking %s: no navigation to %s (at %s): %v", sel, path, page.URL(), err)
	}
	if err := page.WaitForLoadState(); err != nil {
		t.Fatal(err)
	}
}

// TestFoundationSetupLink: without --dev the server logs a one-time setup
// link; it creates the first CA administrator, who lands signed in on the
// staff dashboard; the link then says it has been used, and the new
// password signs in.
func TestFoundationSetupLink(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{NoDev: true})
	if _, err := srv.WaitForOutput("SETUP LINK", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	link := srv.SetupLink()
	if !strings.HasPrefix(link, srv.BaseURL+"/setup/") {
		t.Fatalf("setup link %q does not start with %s/setup/", link, srv.BaseURL)
	}

	page, _ := harness.NewPage(t, srv)
	if st := harness.Goto(t, page, link); st != http.StatusOK {
		t.Fatalf("setup link: HTTP %d", st)
	}
	const name, email, password = "Carla Admin", "carla@ca.test", "correct horse battery staple 42"
	fndFill(t, page, "#name", name)
	fndFill(t, page, "#email", email)
	fndFill(t, page, "#password", password)
	fndFill(t, page, "#confirm", password)
	fndSubmit(t, page, "form[action^='/setup/'] button[type=submit]", "/dashboard")

	if got := fndText(t, page, "header .who-name"); got != name {
		t.Errorf("header shows user %q, want %q", got, name)
	}
	nav := fndTexts(t, page, "nav.sidenav a")
	if !fndContains(nav, "Validation queue") {
		t.Errorf("CA administrator's navigation %q has no Validation queue", nav)
	}
	if fndContains(nav, "Request a certificate") {
		t.Errorf("CA administrator's navigation %q shows customer items", nav)
	}
	if h := fndText(t, page, "main h1"); h != "Dashboard" {
		t.Errorf("dashboard heading %q", h)
	}

	// the link works once
	if st := harness.Goto(t, page, link); st != http.StatusGone {
		t.Errorf("used setup link: HTTP %d, want 410", st)
	}
	if h := fndText(t, page, "main h1"); h != "This setup link has been used" {
		t.Errorf("used setup link heading %q", h)
	}
	if n, _ := page.Locator("#password").Count(); n != 0 {
		t.Error("used setup link still shows the form")
	}

	// the account is real: a fresh browser signs in with it
	page2, _ := harness.NewPage(t, srv)
	harness.SignIn(t, page2, srv, email, password)
	if got := fndText(t, page2, "header .who-name"); got != name {
		t.Errorf("after sign-in the header shows %q, want %q", got, name)
	}
}

// TestFoundation runs the dev-mode checks against one server (a start
// costs seconds): each subtest uses its own browser context and its own
// session. DemoAdminDutchAndSignOut runs last because the language switch
// is remembered on the user (sign-ins after it are in Dutch).
func TestFoundation(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{})
	t.Run("WrongPassword", func(t *testing.T) { fndWrongPassword(t, srv) })
	t.Run("CSRF", func(t *testing.T) { fndCSRF(t, srv) })
	t.Run("Axe", func(t *testing.T) { fndAxe(t, srv) })
	t.Run("MailDevMailbox", func(t *testing.T) { fndMailDevMailbox(t, srv) })
	// last: it makes Dutch the demo administrator's remembered language
	t.Run("DemoAdminDutchAndSignOut", func(t *testing.T) { fndDemoAdminDutchAndSignOut(t, srv) })
}

// fndDemoAdminDutchAndSignOut: the demo administrator sees the
// dashboard, switches to Dutch (kept across a reload, a sign-out and the
// next sign-in), and
// signing out ends the session: the cookie copied before sign-out opens the
// dashboard in another browser before, and no longer after.
func fndDemoAdminDutchAndSignOut(t *testing.T, srv *harness.Server) {
	admin := srv.User(t, harness.RoleAccountAdmin)
	if admin.Email != "admin@example.com" {
		t.Fatalf("demo account administrator is %q, want admin@example.com", admin.Email)
	}

	page, ctx := harness.NewPage(t, srv)
	harness.SignIn(t, page, srv, admin.Email, admin.Password)
	if p := fndPath(t, page); p != "/dashboard" {
		t.Fatalf("signed in at %s, want /dashboard", p)
	}
	if got := fndText(t, page, "header .who-account"); got != "Example Corp" {
		t.Errorf("header account %q, want Example Corp", got)
	}
	if nav := fndTexts(t, page, "nav.sidenav a"); !reflect.DeepEqual(nav, fndNavEN) {
		t.Errorf("navigation %q, want %q", nav, fndNavEN)
	}
	if lang := fndAttr(t, page, "html", "lang"); lang != "en" {
		t.Errorf("html lang %q, want en", lang)
	}

	// Nederlands
	if err := page.Locator("nav.lang a", playwright.PageLocatorOptions{HasText: "Nederlands"}).Click(); err != nil {
		t.Fatal(err)
	}
	if _, err := page.WaitForFunction(`() => document.documentElement.lang === "nl"`, nil); err != nil {
		t.Fatalf("no Dutch page after the switch (at %s): %v", page.URL(), err)
	}
	if p := fndPath(t, page); p != "/dashboard" {
		t.Errorf("language switch went to %s, want back to /dashboard", p)
	}
	checkDutch := func(when string) {
		t.Helper()
		if lang := fndAttr(t, page, "html", "lang"); lang != "nl" {
			t.Errorf("%s: html lang %q, want nl", when, lang)
		}
		if nav := fndTexts(t, page, "nav.sidenav a"); !reflect.DeepEqual(nav, fndNavNL) {
			t.Errorf("%s: navigation %q, want %q", when, nav, fndNavNL)
		}
		if b := fndText(t, page, "header form[action='/signout'] button"); b != "Afmelden" {
			t.Errorf("%s: sign-out button %q, want Afmelden", when, b)
		}
		if cur := fndAttr(t, page, "nav.lang a[hreflang=nl]", "aria-current"); cur != "page" {
			t.Errorf("%s: Nederlands link aria-current=%q, want page", when, cur)
		}
	}
	checkDutch("after the switch")
	if _, err := page.Reload(); err != nil {
		t.Fatal(err)
	}
	checkDutch("after a reload")

	// copy the session cookie
	cookies, err := ctx.Cookies(srv.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	var session *playwright.Cookie
	for i := range cookies {
		if cookies[i].Name == fndSessionCookie {
			session = &cookies[i]
		}
	}
	if session == nil {
		t.Fatalf("no %s cookie among %d cookies", fndSessionCookie, len(cookies))
	}
	openWithCookie := func() string {
		t.Helper()
		p, c := harness.NewPage(t, srv)
		if err := c.AddCookies([]playwright.OptionalCookie{session.ToOptionalCookie()}); err != nil {
			t.Fatal(err)
		}
		harness.Goto(t, p, "/dashboard")
		path := fndPath(t, p)
		_ = c.Close()
		return path
	}
	// control: the copy works while the session lives
	if p := openWithCookie(); p != "/dashboard" {
		t.Fatalf("the copied cookie opened %s before sign-out, want /dashboard (copying does not work)", p)
	}

	fndSubmit(t, page, "header form[action='/signout'] button[type=submit]", "/signin")
	if f := fndText(t, page, "main .flash"); f != "U bent afgemeld." {
		t.Errorf("after sign-out the flash is %q, want the Dutch 'U bent afgemeld.'", f)
	}
	harness.Goto(t, page, "/dashboard")
	if p := fndPath(t, page); p != "/signin" {
		t.Errorf("after sign-out /dashboard opened %s in the same browser", p)
	}

	if p := openWithCookie(); p != "/signin" {
		t.Errorf("the cookie copied before sign-out still opens %s, want /signin", p)
	}

	// the choice is remembered on the user: a new browser asking for
	// English gets Dutch after signing in
	page2, _ := harness.NewPage(t, srv)
	harness.SignIn(t, page2, srv, admin.Email, admin.Password)
	if lang := fndAttr(t, page2, "html", "lang"); lang != "nl" {
		t.Errorf("next sign-in (Accept-Language en-US): html lang %q, want the remembered nl", lang)
	}
}

// fndWrongPassword: a wrong password shows the message above the
// form, keeps the email address, clears the password; the right one then
// signs in from that same form.
func fndWrongPassword(t *testing.T, srv *harness.Server) {
	admin := srv.User(t, harness.RoleAccountAdmin)
	page, _ := harness.NewPage(t, srv)
	harness.Goto(t, page, "/signin")
	fndFill(t, page, "#email", admin.Email)
	fndFill(t, page, "#password", admin.Password+"-wrong")
	resp, err := page.ExpectResponse(func(u string) bool { return strings.HasSuffix(u, "/signin") }, func() error {
		return page.Locator("form[action='/signin'] button[type=submit]").Click()
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Request().Method() != http.MethodPost || resp.Status() != http.StatusUnauthorized {
		t.Errorf("wrong password: %s %d, want POST 401", resp.Request().Method(), resp.Status())
	}
	if err := page.WaitForLoadState(); err != nil {
		t.Fatal(err)
	}
	if msg := fndText(t, page, "main [role=alert]"); msg != "The email address or password is not correct." {
		t.Errorf("error message %q", msg)
	}
	if v, _ := page.Locator("#email").InputValue(); v != admin.Email {
		t.Errorf("email field %q after the error, want %q", v, admin.Email)
	}
	if v, _ := page.Locator("#password").InputValue(); v != "" {
		t.Error("the wrong password was sent back into the page")
	}
	if n, _ := page.Locator("nav.sidenav").Count(); n != 0 {
		t.Error("navigation shown after a failed sign-in")
	}

	// the kept email plus the right password signs in
	fndFill(t, page, "#password", admin.Password)
	fndSubmit(t, page, "form[action='/signin'] button[type=submit]", "/dashboard")
}

// fndCSRF: state-changing POSTs sent with the browser's own
// session cookie but without the form's token are refused with 403 and
// change nothing; the same POST with the page's token works.
func fndCSRF(t *testing.T, srv *harness.Server) {
	admin := srv.User(t, harness.RoleAccountAdmin)

	// anonymous: sign-in without a token
	anon, _ := harness.NewPage(t, srv)
	harness.Goto(t, anon, "/signin") // gets a session cookie with a token
	post := func(page playwright.Page, path string, form map[string]any) playwright.APIResponse {
		t.Helper()
		r, err := page.Request().Post(srv.URL(path), playwright.APIRequestContextPostOptions{
			Form: form, MaxRedirects: playwright.Int(0),
		})
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		return r
	}
	if r := post(anon, "/signin", map[string]any{"email": admin.Email, "password": admin.Password}); r.Status() != http.StatusForbidden {
		t.Errorf("POST /signin without token: %d, want 403", r.Status())
	}

	page, _ := harness.NewPage(t, srv)
	harness.SignIn(t, page, srv, admin.Email, admin.Password)
	for name, form := range map[string]map[string]any{
		"no token":     {},
		"forged token": {"csrf": "forged"},
	} {
		r := post(page, "/signout", form)
		if r.Status() != http.StatusForbidden {
			t.Errorf("POST /signout with %s: %d, want 403", name, r.Status())
			continue
		}
		body, _ := r.Text()
		if !strings.Contains(body, "This form has expired") {
			t.Errorf("403 page for %s does not explain the expired form: %.300s", name, body)
		}
	}
	// nothing happened: still signed in
	harness.Goto(t, page, "/dashboard")
	if p := fndPath(t, page); p != "/dashboard" {
		t.Fatalf("a refused sign-out ended the session (at %s)", p)
	}

	// control: with the page's token the same request signs out
	tok := fndAttr(t, page, "header form[action='/signout'] input[name=csrf]", "value")
	if tok == "" {
		t.Fatal("sign-out form has no csrf value")
	}
	r := post(page, "/signout", map[string]any{"csrf": tok})
	if r.Status() != http.StatusSeeOther || !strings.HasSuffix(r.Headers()["location"], "/signin") {
		t.Errorf("POST /signout with the token: %d Location %q, want 303 to /signin", r.Status(), r.Headers()["location"])
	}
	harness.Goto(t, page, "/dashboard")
	if p := fndPath(t, page); p != "/signin" {
		t.Errorf("after a sign-out with the token /dashboard opened %s", p)
	}
}

// fndAxe: no serious or critical axe-core violation on the
// sign-in page (also with a form error) and the dashboard.
func fndAxe(t *testing.T, srv *harness.Server) {
	admin := srv.User(t, harness.RoleAccountAdmin)
	page, _ := harness.NewPage(t, srv)

	check := func(what string) {
		t.Helper()
		vs := harness.Axe(t, page)
		if bad := harness.AtLeast(vs, "serious"); len(bad) > 0 {
			t.Errorf("axe on %s (%s): serious or critical violations:\n%s", what, page.URL(), harness.FormatViolations(bad))
		}
		for _, v := range vs {
			if v.Impact != "serious" && v.Impact != "critical" {
				t.Logf("axe on %s (minor/moderate): %s", what, v)
			}
		}
	}

	harness.Goto(t, page, "/signin")
	check("the sign-in page")

	fndFill(t, page, "#email", "nobody@example.com") // not the admin: no failure counted against it
	fndFill(t, page, "#password", "not the password")
	if _, err := page.ExpectResponse(func(u string) bool { return strings.HasSuffix(u, "/signin") }, func() error {
		return page.Locator("form[action='/signin'] button[type=submit]").Click()
	}); err != nil {
		t.Fatal(err)
	}
	if err := page.Locator("main [role=alert]").WaitFor(); err != nil {
		t.Fatal(err)
	}
	check("the sign-in page with an error")

	harness.SignIn(t, page, srv, admin.Email, admin.Password)
	check("the dashboard")
}

// fndMailDevMailbox: the CA administrator sends a test message
// from the dev mailbox page; it goes through the outbox and shows up in the
// dev mailbox with its link.
func fndMailDevMailbox(t *testing.T, srv *harness.Server) {
	page, _ := harness.NewPage(t, srv)
	harness.SignInAs(t, page, srv, harness.RoleCAAdmin)
	fndSendTestMail(t, page, "someone@example.com")

	m := srv.WaitForMail(t, "someone@example.com", "test", 10*time.Second)
	if m.Subject != "certdesk test message" {
		t.Errorf("subject %q", m.Subject)
	}
	want := srv.BaseURL + "/"
	if got := harness.ExtractLink(m.Text, "/"); got != want {
		t.Errorf("text body link %q, want %q; text:\n%s", got, want, m.Text)
	}
	if got := harness.ExtractLink(m.HTML, "/"); got != want {
		t.Errorf("HTML body link %q, want %q", got, want)
	}

	// the mailbox page lists it; its page shows the text with the link
	harness.Goto(t, page, "/dev/mailbox")
	row := page.Locator("main table tbody tr", playwright.PageLocatorOptions{HasText: "someone@example.com"})
	if n, _ := row.Count(); n != 1 {
		t.Fatalf("dev mailbox lists %d rows for someone@example.com, want 1", n)
	}
	if err := row.Locator("a").Click(); err != nil {
		t.Fatal(err)
	}
	if err := page.Locator("#mail-text").WaitFor(); err != nil {
		t.Fatal(err)
	}
	if txt := fndText(t, page, "#mail-text"); !strings.Contains(txt, want) {
		t.Errorf("message page text lacks the link %s:\n%s", want, txt)
	}
}

// TestFoundationMailSMTP: with --smtp-url the same action delivers the
// message, once, to a real SMTP server.
func TestFoundationMailSMTP(t *testing.T) {
	smtpSrv := harness.StartSMTPServer(t)
	srv := harness.StartServer(t, harness.ServerOptions{Args: []string{"--smtp-url", smtpSrv.URL()}})
	page, _ := harness.NewPage(t, srv)
	harness.SignInAs(t, page, srv, harness.RoleCAAdmin)
	fndSendTestMail(t, page, "someone@example.com")

	m := smtpSrv.WaitForMessage(t, "someone@example.com", 15*time.Second)
	if m.ParseErr != nil {
		t.Fatalf("message does not parse: %v\n%s", m.ParseErr, m.Data)
	}
	if to := m.Header.Get("To"); !strings.Contains(to, "someone@example.com") {
		t.Errorf("To header %q", to)
	}
	if m.Subject != "certdesk test message" {
		t.Errorf("Subject %q", m.Subject)
	}
	want := srv.BaseURL + "/"
	if got := harness.ExtractLink(m.Text, "/"); got != want {
		t.Errorf("text part link %q, want %q; text:\n%s", got, want, m.Text)
	}
	if got := harness.ExtractLink(m.HTML, "/"); got != want {
		t.Errorf("HTML part link %q, want %q", got, want)
	}

	// the outbox row ends as sent, and the server got it exactly once
	deadline := time.Now().Add(10 * time.Second)
	for {
		harness.Goto(t, page, "/dev/mailbox")
		row := page.Locator("main table tbody tr", playwright.PageLocatorOptions{HasText: "someone@example.com"})
		cells, err := row.Locator("td").AllInnerTexts()
		if err != nil {
			t.Fatal(err)
		}
		if len(cells) >= 4 && strings.TrimSpace(cells[3]) == "sent" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox row not sent after 10 s: %q", cells)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(smtpSrv.Messages()); n != 1 {
		t.Errorf("SMTP server received %d messages, want 1", n)
	}
}

// fndSendTestMail opens the dev mailbox through the navigation and sends a
// test message to `to` with its form.
func fndSendTestMail(t *testing.T, page playwright.Page, to string) {
	t.Helper()
	if err := page.Locator("nav.sidenav a", playwright.PageLocatorOptions{HasText: "Dev mailbox"}).Click(); err != nil {
		t.Fatalf("no Dev mailbox in the CA administrator's navigation: %v", err)
	}
	if err := page.WaitForURL("**/dev/mailbox"); err != nil {
		t.Fatal(err)
	}
	fndFill(t, page, "#to", to)
	fndSubmit(t, page, "form[action='/dev/mailbox/test'] button[type=submit]", "/dev/mailbox")
	if f := fndText(t, page, "main .flash"); f != "The test message is in the outbox." {
		t.Errorf("after sending: flash %q", f)
	}
}

func fndContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
