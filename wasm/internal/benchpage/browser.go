package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/mxschmitt/playwright-go"
)

const chromiumPath = "/usr/bin/chromium"

var chromiumArgs = []string{
	"--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
}

// launch starts Playwright (driver in <repo>/.cache/playwright, the machine's
// Node.js, never a browser download) and Debian's headless Chromium.
func launch(root string) (*playwright.Playwright, playwright.Browser, error) {
	if _, err := os.Stat(chromiumPath); err != nil {
		return nil, nil, errors.New(chromiumPath + " missing (apt-get install chromium)")
	}
	if os.Getenv("PLAYWRIGHT_NODEJS_PATH") == "" {
		_ = os.Setenv("PLAYWRIGHT_NODEJS_PATH", "/usr/bin/node")
	}
	opts := &playwright.RunOptions{
		SkipInstallBrowsers: true,
		DriverDirectory:     filepath.Join(root, ".cache", "playwright"),
		Stdout:              os.Stderr,
	}
	if err := playwright.Install(opts); err != nil {
		return nil, nil, err
	}
	pw, err := playwright.Run(opts)
	if err != nil {
		return nil, nil, err
	}
	b, err := pw.Chromium.Launch(playwright.BrowserTypeLaunchOptions{
		ExecutablePath: playwright.String(chromiumPath),
		Headless:       playwright.Bool(true),
		Args:           chromiumArgs,
	})
	if err != nil {
		_ = pw.Stop()
		return nil, nil, err
	}
	return pw, b, nil
}
