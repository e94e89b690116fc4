// Command benchpage measures the browser KeyGen in headless Chromium: the
// median time to a CSR with (a) the page's path (WebCrypto key and
// signature, Go CSR) and (b) WebCrypto generateKey alone, using the hooks in
// static/js/keygen.js (window.certdeskKeyGenBench). It builds ./wasm itself
// and serves a throwaway page from 127.0.0.1 with the portal's CSP.
//
//	go run ./wasm/internal/benchpage [-n 25] [-gcflags all=-l ...] [-json out.json]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/mxschmitt/playwright-go"
)

type stats struct {
	N      int       `json:"n"`
	Median float64   `json:"median_ms"`
	P25    float64   `json:"p25_ms"`
	P75    float64   `json:"p75_ms"`
	Min    float64   `json:"min_ms"`
	Max    float64   `json:"max_ms"`
	All    []float64 `json:"all_ms"`
}

func summarize(xs []float64) stats {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	q := func(p float64) float64 {
		if len(s) == 0 {
			return 0
		}
		i := p * float64(len(s)-1)
		lo := int(i)
		if lo+1 >= len(s) {
			return s[lo]
		}
		return s[lo] + (i-float64(lo))*(s[lo+1]-s[lo])
	}
	return stats{N: len(s), Median: q(0.5), P25: q(0.25), P75: q(0.75), Min: s[0], Max: s[len(s)-1], All: xs}
}

var benches = []string{"webCryptoKeyCSR", "webCryptoGenerateOnly"}

func main() {
	n := flag.Int("n", 25, "keys per path")
	var gcflags []string
	flag.Func("gcflags", "extra -gcflags for the wasm build, e.g. all=-l (repeatable; the last matching pattern wins)",
		func(v string) error { gcflags = append(gcflags, v); return nil })
	jsonOut := flag.String("json", "", "write the results as JSON to this file")
	flag.Parse()
	if err := run(*n, gcflags, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "benchpage:", err)
		os.Exit(1)
	}
}

func run(n int, gcflags []string, jsonOut string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "benchpage")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var extra []string
	for _, g := range gcflags {
		extra = append(extra, "-gcflags="+g)
	}
	wasm, err := buildWasm(root, dir, extra...)
	if err != nil {
		return err
	}
	fi, err := os.Stat(wasm)
	if err != nil {
		return err
	}
	srv := newServer(root, wasm, map[string]string{"/": benchHTML}, nil)
	defer srv.Close()

	pw, browser, err := launch(root)
	if err != nil {
		return err
	}
	defer pw.Stop()
	defer browser.Close()
	page, err := browser.NewPage()
	if err != nil {
		return err
	}
	var consoleErrs []string
	page.On("console", func(m playwright.ConsoleMessage) {
		if m.Type() == "error" {
			consoleErrs = append(consoleErrs, m.Text())
		}
	})
	t0 := time.Now()
	if _, err := page.Goto(srv.URL + "/"); err != nil {
		return err
	}
	if _, err := page.WaitForFunction("() => window.certdeskKeyGen && window.certdeskKeyGen.ready", nil,
		playwright.PageWaitForFunctionOptions{Timeout: playwright.Float(30000)}); err != nil {
		return fmt.Errorf("module not ready: %v (console: %v)", err, consoleErrs)
	}
	load := time.Since(t0)

	results := map[string][]float64{}
	// Warm up each path twice, then interleave the paths in a rotating
	// order so drift (GC, CPU heat, other load) hits all three alike.
	for round := -2; round < n; round++ {
		for k := range benches {
			name := benches[(k+max(round, 0))%len(benches)]
			v, err := page.Evaluate("name => window.certdeskKeyGenBench[name]()", name)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			ms := num(v)
			if ms < 0 {
				return fmt.Errorf("%s returned %T %v", name, v, v)
			}
			if round >= 0 {
				results[name] = append(results[name], ms)
			}
		}
	}
	// The fairest ratio: CSR-ready time over generateKey time of the same
	// key (RSA key generation time varies a lot from key to key).
	var ratios, overhead []float64
	for i := 0; i < n; i++ {
		v, err := page.Evaluate("() => window.certdeskKeyGenBench.webCryptoKeyCSRSplit()")
		if err != nil {
			return fmt.Errorf("webCryptoKeyCSRSplit: %w", err)
		}
		m, _ := v.(map[string]any)
		g, t := num(m["generate"]), num(m["total"])
		if g <= 0 {
			return fmt.Errorf("webCryptoKeyCSRSplit returned %v", v)
		}
		ratios = append(ratios, t/g)
		overhead = append(overhead, t-g)
	}
	ua, _ := page.Evaluate("() => navigator.userAgent")
	out := map[string]any{
		"wasm_bytes":    fi.Size(),
		"gcflags":       gcflags,
		"user_agent":    ua,
		"page_ready_ms": load.Milliseconds(),
	}
	fmt.Printf("wasm %d bytes (gcflags %q), page+module ready in %v\n", fi.Size(), gcflags, load.Round(time.Millisecond))
	for _, name := range benches {
		s := summarize(results[name])
		out[name] = s
		fmt.Printf("%-22s n=%d median=%6.1f ms  p25=%6.1f  p75=%6.1f  min=%6.1f  max=%6.1f\n",
			name, s.N, s.Median, s.P25, s.P75, s.Min, s.Max)
	}
	wc := summarize(results["webCryptoKeyCSR"]).Median
	wg := summarize(results["webCryptoGenerateOnly"]).Median
	fmt.Printf("ratio to WebCrypto generateKey median: WebCrypto key + Go CSR %.2fx\n", wc/wg)
	rs, os_ := summarize(ratios), summarize(overhead)
	out["split_ratio_total_over_generate"] = rs
	out["split_overhead_ms"] = os_
	fmt.Printf("same-key split (n=%d): CSR ready / generateKey median %.2fx (p25 %.2f, p75 %.2f); after the key median %.1f ms\n",
		rs.N, rs.Median, rs.P25, rs.P75, os_.Median)
	if len(consoleErrs) > 0 {
		fmt.Printf("console errors: %v\n", consoleErrs)
	}
	if jsonOut != "" {
		b, _ := json.MarshalIndent(out, "", "  ")
		return os.WriteFile(jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

// num converts a number from Evaluate (float64 or int) to float64; -1 if it
// is not a number.
func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	}
	return -1
}
