package harness

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxschmitt/playwright-go"
)

// ChromiumPath is Debian's Chromium (apt-get install chromium).
// CERTDESK_E2E_CHROMIUM overrides it.
const ChromiumPath = "/usr/bin/chromium"

// DefaultTimeout is the Playwright timeout for actions and navigations of
// pages made by NewPage: a local server answers in milliseconds, so a
// missing element fails the test quickly instead of after 30 s.
const DefaultTimeout = 10 * time.Second

// ChromiumArgs are the launch flags: --no-sandbox because CI runs as root,
// and no background networking, so Chromium sends no packet anywhere but to
// the test server.
var ChromiumArgs = []string{
	"--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
}

var (
	browserOnce sync.Once
	browserErr  error
	pw          *playwright.Playwright
	browser     playwright.Browser
)

// Main runs the tests, then closes the shared browser and Playwright and
// removes the built binary. Call it from the e2e package's TestMain:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if browser != nil {
		_ = browser.Close()
	}
	if pw != nil {
		_ = pw.Stop()
	}
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// DriverDir is where the Playwright driver lives: <repo>/.cache/playwright.
func DriverDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "playwright"), nil
}

// Browser returns the headless Chromium shared by the test process,
// starting Playwright on first use. The driver is installed if missing
// (npm registry, never a browser download) with the machine's Node.js.
func Browser(t testing.TB) playwright.Browser {
	t.Helper()
	browserOnce.Do(func() { browserErr = launch() })
	if browserErr != nil {
		t.Fatalf("harness: browser: %v", browserErr)
	}
	return browser
}

func launch() error {
	if os.Getenv("PLAYWRIGHT_NODEJS_PATH") == "" {
		if err := os.Setenv("PLAYWRIGHT_NODEJS_PATH", "/usr/bin/node"); err != nil {
			return err
		}
	}
	exe := ChromiumPath
	if p := os.Getenv("CERTDESK_E2E_CHROMIUM"); p != "" {
		exe = p
	}
	if _, err := os.Stat(exe); err != nil {
		return fmt.Errorf("%s not found (run `make deps`): %w", exe, err)
	}
	dir, err := DriverDir()
	if err != nil {
		return err
	}
	opts := &playwright.RunOptions{
		SkipInstallBrowsers: true,
		DriverDirectory:     dir,
		Verbose:             false,
		Stdout:              os.Stderr,
	}
	// Run checks the driver's version itself; Install (which checks it
	// again, about a second of Node.js start-up) only when that fails.
	pw, err = playwright.Run(opts)
	if err != nil {
		if ierr := playwright.Install(opts); ierr != nil {
			return fmt.Errorf("playwright driver (run `make deps`): %w", ierr)
		}
		if pw, err = playwright.Run(opts); err != nil {
			return fmt.Errorf("start playwright: %w", err)
		}
	}
	browser, err = pw.Chromium.Launch(playwright.BrowserTypeLaunchOptions{
		ExecutablePath: playwright.String(exe),
		Headless:       playwright.Bool(true),
		Args:           ChromiumArgs,
	})
	if err != nil {
		return fmt.Errorf("launch %s: %w", exe, err)
	}
	return nil
}

// PageOption changes the browser context NewPage makes.
type PageOption func(*playwright.BrowserNewContextOptions)

// WithLocale sets the context's locale (navigator.language and the
// Accept-Language header), e.g. "nl-NL". The default is "en-US".
func WithLocale(locale string) PageOption {
	return func(o *playwright.BrowserNewContextOptions) { o.Locale = playwright.String(locale) }
}

// NewPage opens a page in a fresh browser context (its own cookies and
// storage) with downloads accepted, locale en-US, and, when srv is not nil,
// BaseURL set to srv.BaseURL so page.Goto("/signin") works. Actions and
// navigations time out after DefaultTimeout. When the test ends the
// context is closed; if the test failed, each of the context's pages is
// first saved as a full-page screenshot in e2e/artifacts/<TestName>.png
// (<TestName>-2.png for its second page, <TestName>-ctx2.png for a second
// context of the same test) and the path is logged.
func NewPage(t testing.TB, srv *Server, opts ...PageOption) (playwright.Page, playwright.BrowserContext) {
	t.Helper()
	b := Browser(t)
	o := playwright.BrowserNewContextOptions{
		AcceptDownloads: playwright.Bool(true),
		Locale:          playwright.String("en-US"),
	}
	if srv != nil {
		o.BaseURL = playwright.String(srv.BaseURL)
	}
	for _, f := range opts {
		f(&o)
	}
	ctx, err := b.NewContext(o)
	if err != nil {
		t.Fatalf("harness: new browser context: %v", err)
	}
	ctx.SetDefaultTimeout(float64(DefaultTimeout.Milliseconds()))
	ctx.SetDefaultNavigationTimeout(float64(DefaultTimeout.Milliseconds()))
	name := shotName(t.Name())
	t.Cleanup(func() {
		if t.Failed() {
			for i, p := range ctx.Pages() {
				saveScreenshot(t, p, name, i)
			}
		}
		_ = ctx.Close()
	})
	page, err := ctx.NewPage()
	if err != nil {
		t.Fatalf("harness: new page: %v", err)
	}
	return page, ctx
}

// unsafeName matches what may not appear in an artifact's file name (a
// subtest's "/" becomes "_").
var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

var (
	shotMu    sync.Mutex
	shotCount = map[string]int{}
)

// shotName gives each context of a test its own screenshot name: the
// first is <TestName>, a second context of the same test <TestName>-ctx2.
func shotName(test string) string {
	shotMu.Lock()
	defer shotMu.Unlock()
	shotCount[test]++
	if n := shotCount[test]; n > 1 {
		return fmt.Sprintf("%s-ctx%d", test, n)
	}
	return test
}

func saveScreenshot(t testing.TB, p playwright.Page, name string, i int) {
	if i > 0 {
		name = fmt.Sprintf("%s-%d", name, i+1)
	}
	path, err := SaveScreenshot(p, name)
	if err != nil {
		t.Logf("harness: screenshot of %s: %v", p.URL(), err)
		return
	}
	t.Logf("harness: screenshot of %s saved to %s", p.URL(), path)
}

// SaveScreenshot writes a full-page PNG of page to
// e2e/artifacts/<name>.png and returns its path. NewPage does this by
// itself for failed tests.
func SaveScreenshot(page playwright.Page, name string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	path := filepath.Join(root, "e2e", "artifacts", unsafeName.ReplaceAllString(name, "_")+".png")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if _, err := page.Screenshot(playwright.PageScreenshotOptions{
		Path: playwright.String(path), FullPage: playwright.Bool(true),
		Timeout: playwright.Float(5000),
	}); err != nil {
		return "", err
	}
	return path, nil
}

// Goto navigates to path (relative to the context's BaseURL, or a full
// URL) and fails the test on a network error. It returns the HTTP status.
func Goto(t testing.TB, page playwright.Page, path string) int {
	t.Helper()
	resp, err := page.Goto(path)
	if err != nil {
		t.Fatalf("harness: goto %s: %v", path, err)
	}
	if resp == nil {
		return 0
	}
	return resp.Status()
}

// SignIn opens /signin, fills #email and #password, submits, and waits for
// the redirect that follows a successful sign-in (to /dashboard today). It
// fails the test, quoting the page's error text, if the server answers the
// form with anything but a redirect.
func SignIn(t testing.TB, page playwright.Page, srv *Server, email, password string) {
	t.Helper()
	Goto(t, page, srv.URL("/signin"))
	if err := page.Locator("#email").Fill(email); err != nil {
		t.Fatalf("harness: sign-in: fill #email: %v", err)
	}
	if err := page.Locator("#password").Fill(password); err != nil {
		t.Fatalf("harness: sign-in: fill #password: %v", err)
	}
	resp, err := page.ExpectResponse(func(u string) bool {
		pu, err := url.Parse(u)
		return err == nil && pu.Path == "/signin"
	}, func() error {
		return page.Locator("form[action='/signin'] button[type=submit]").Click()
	})
	if err != nil {
		t.Fatalf("harness: sign-in as %s: submit: %v", email, err)
	}
	if resp.Request().Method() != "POST" {
		t.Fatalf("harness: sign-in as %s: expected the form's POST, saw %s", email, resp.Request().Method())
	}
	if resp.Status() != 302 && resp.Status() != 303 {
		text, _ := page.Locator("main").InnerText()
		t.Fatalf("harness: sign-in as %s refused (HTTP %d): %s", email, resp.Status(), strings.TrimSpace(text))
	}
	loc, _ := resp.HeaderValue("location")
	target, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("harness: sign-in: bad Location %q", loc)
	}
	if err := page.WaitForURL(func(u string) bool {
		pu, err := url.Parse(u)
		return err == nil && pu.Path == target.Path
	}); err != nil {
		t.Fatalf("harness: sign-in as %s: no navigation to %s: %v", email, loc, err)
	}
	if err := page.WaitForLoadState(); err != nil {
		t.Fatalf("harness: sign-in: load %s: %v", loc, err)
	}
}

// SignInAs signs in with the dev credentials of role (RoleCAAdmin, ...).
func SignInAs(t testing.TB, page playwright.Page, srv *Server, role string) {
	t.Helper()
	c := srv.User(t, role)
	SignIn(t, page, srv, c.Email, c.Password)
}
