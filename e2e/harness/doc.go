// Package harness runs certdesk end to end: it builds the real binary,
// starts it on a free loopback port with a fresh data directory, and
// drives Debian's Chromium through playwright-go.
//
// A suite's TestMain calls Main. Each test then calls StartServer and
// NewPage; both clean up after themselves with t.Cleanup. When a test
// fails, the server's output goes to the test log and a full-page
// screenshot of every open page goes to e2e/artifacts/<TestName>.png.
//
// The browser is never downloaded: Playwright's driver (the
// playwright-core npm package) is fetched into <repo>/.cache/playwright
// and run with the machine's Node.js, and the browser is /usr/bin/chromium.
// `make deps` installs both.
package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot returns the directory of certdesk's go.mod, found by walking up
// from the working directory (a test's package folder).
func RepoRoot() (string, error) {
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && strings.HasPrefix(strings.TrimSpace(string(data)), "module certdesk") {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = fmt.Errorf("harness: no go.mod of module certdesk above the working directory")
				return
			}
			dir = parent
		}
	})
	return rootDir, rootErr
}
