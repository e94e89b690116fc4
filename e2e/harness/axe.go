package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mxschmitt/playwright-go"
)

// DefaultAxeTags are the axe-core rule tags Axe runs when given none:
// WCAG 2.0, 2.1 and 2.2 levels A and AA, and axe's best practices.
var DefaultAxeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"}

// Violation is one failed axe-core rule.
type Violation struct {
	ID          string          `json:"id"`
	Impact      string          `json:"impact"` // minor, moderate, serious, critical
	Description string          `json:"description"`
	Help        string          `json:"help"`
	HelpURL     string          `json:"helpUrl"`
	Nodes       []ViolationNode `json:"nodes"`
}

// ViolationNode is one element that failed a rule.
type ViolationNode struct {
	Target         string `json:"target"` // CSS selector
	HTML           string `json:"html"`
	FailureSummary string `json:"failureSummary"`
}

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s: %s (%s)", v.Impact, v.ID, v.Help, v.HelpURL)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    %s  %s", n.Target, n.HTML)
		if n.FailureSummary != "" {
			fmt.Fprintf(&b, "\n      %s", strings.ReplaceAll(n.FailureSummary, "\n", "\n      "))
		}
	}
	return b.String()
}

var impactRank = map[string]int{"minor": 1, "moderate": 2, "serious": 3, "critical": 4}

// AtLeast keeps the violations whose impact is minImpact or worse
// ("serious" keeps serious and critical).
func AtLeast(vs []Violation, minImpact string) []Violation {
	var out []Violation
	for _, v := range vs {
		if impactRank[v.Impact] >= impactRank[minImpact] {
			out = append(out, v)
		}
	}
	return out
}

// FormatViolations renders violations one per paragraph for a test log.
func FormatViolations(vs []Violation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, "\n")
}

var (
	axeOnce   sync.Once
	axeSource string
	axeErr    error
)

// AxePath is where `make deps` installs axe-core:
// <repo>/.cache/npm/node_modules/axe-core/axe.min.js.
func AxePath() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".cache", "npm", "node_modules", "axe-core", "axe.min.js"), nil
}

// Axe runs axe-core on the page as it is now and returns the violations
// (nil when clean). Tags select rules; none means DefaultAxeTags.
//
// axe-core is evaluated through Playwright (the DevTools protocol), which
// the page's Content-Security-Policy does not govern: unlike AddScriptTag
// it needs no CSP bypass, so the page under test keeps its real CSP.
func Axe(t testing.TB, page playwright.Page, tags ...string) []Violation {
	t.Helper()
	axeOnce.Do(func() {
		p, err := AxePath()
		if err != nil {
			axeErr = err
			return
		}
		b, err := os.ReadFile(p)
		if err != nil {
			axeErr = fmt.Errorf("axe-core not installed (run `make deps`): %w", err)
			return
		}
		axeSource = string(b)
	})
	if axeErr != nil {
		t.Fatalf("harness: %v", axeErr)
	}
	if len(tags) == 0 {
		tags = DefaultAxeTags
	}
	loaded, err := page.Evaluate(`() => typeof window.axe === "object"`)
	if err != nil {
		t.Fatalf("harness: axe: %v", err)
	}
	if loaded != true {
		// A function body, so the library's top-level statements run as a
		// script; it sets window.axe itself.
		if _, err := page.Evaluate("() => {\n" + axeSource + "\n}"); err != nil {
			t.Fatalf("harness: axe: inject axe-core: %v", err)
		}
	}
	res, err := page.Evaluate(`async (tags) => {
		const r = await window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
		return JSON.stringify(r.violations.map(v => ({
			id: v.id, impact: v.impact || "", description: v.description, help: v.help, helpUrl: v.helpUrl,
			nodes: v.nodes.map(n => ({ target: n.target.map(x => Array.isArray(x) ? x.join(" >>> ") : x).join(", "), html: n.html, failureSummary: n.failureSummary || "" })),
		})));
	}`, tags)
	if err != nil {
		t.Fatalf("harness: axe.run: %v", err)
	}
	s, ok := res.(string)
	if !ok {
		t.Fatalf("harness: axe.run returned %T", res)
	}
	var vs []Violation
	if err := json.Unmarshal([]byte(s), &vs); err != nil {
		t.Fatalf("harness: axe results: %v", err)
	}
	return vs
}
