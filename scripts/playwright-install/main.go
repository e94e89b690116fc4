// Command playwright-install fetches the Playwright driver (the
// playwright-core npm package) for playwright-go into a project folder,
// never a browser: the e2e suite drives Debian's /usr/bin/chromium.
//
//	go run ./scripts/playwright-install [-dir .cache/playwright]
//
// It uses the machine's Node.js (PLAYWRIGHT_NODEJS_PATH, default
// /usr/bin/node) instead of downloading one, and is a fast no-op when the
// driver of the right version is already there.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mxschmitt/playwright-go"
)

func main() {
	dir := flag.String("dir", ".cache/playwright", "driver directory")
	quiet := flag.Bool("q", false, "print nothing on success")
	flag.Parse()
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fail(err)
	}
	if os.Getenv("PLAYWRIGHT_NODEJS_PATH") == "" {
		if err := os.Setenv("PLAYWRIGHT_NODEJS_PATH", "/usr/bin/node"); err != nil {
			fail(err)
		}
	}
	var out io.Writer = os.Stdout
	if *quiet {
		out = io.Discard
	}
	err = playwright.Install(&playwright.RunOptions{
		SkipInstallBrowsers: true,
		DriverDirectory:     abs,
		Verbose:             !*quiet,
		Stdout:              out,
		Stderr:              os.Stderr,
	})
	if err != nil {
		fail(err)
	}
	if !*quiet {
		fmt.Println("playwright driver ready in", abs)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "playwright-install:", err)
	os.Exit(1)
}
