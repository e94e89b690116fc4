package e2e

import (
	"testing"

	"certdesk/e2e/harness"
)

// TestMain closes the shared browser and Playwright after the suite.
func TestMain(m *testing.M) { harness.Main(m) }
