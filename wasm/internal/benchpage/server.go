package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// repoRoot finds the module root (the folder with go.mod) from the working
// directory upwards.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// buildWasm compiles ./wasm into dir/keygen.wasm with the release flags of
// scripts/wasm.sh plus extra (e.g. another -gcflags) and returns its path.
func buildWasm(root, dir string, extra ...string) (string, error) {
	out := filepath.Join(dir, "keygen.wasm")
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-gcflags=all=-l"}, extra...)
	args = append(args, "-o", out, "./wasm")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	env := append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	// As scripts/wasm.sh: the classic GC while the toolchain has the opt-out.
	probe := exec.Command(gobin, "env", "GOEXPERIMENT")
	probe.Env = append(env, "GOEXPERIMENT=nogreenteagc")
	if probe.Run() == nil {
		env = append(env, "GOEXPERIMENT=nogreenteagc")
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = root
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", errors.New("go build ./wasm: " + err.Error() + "\n" + string(b))
	}
	return out, nil
}

// benchHTML is the throwaway page: the #keygen element keygen.js reads its
// settings from, and nothing inline.
const benchHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>keygen bench</title></head>
<body><main id="keygen" data-wasm-url="/static/keygen.wasm" data-msg-failed="failed" data-msg-no-wasm="no-wasm"></main>
<script src="/static/js/keygen.js"></script></body></html>`

// csp is the portal's script policy: no inline script, no eval, wasm allowed.
const csp = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; object-src 'none'; base-uri 'none'"

// newServer serves the page, keygen.js from the repository, Go's
// wasm_exec.js, the module, and extra handlers (e.g. the exchange).
func newServer(root, wasmPath string, pages map[string]string, extra map[string]http.Handler) *httptest.Server {
	mux := http.NewServeMux()
	for path, body := range pages {
		body := body
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(body))
		})
	}
	for _, js := range []string{"keygen.js", "keygen-boot.js"} {
		js := js
		mux.HandleFunc("GET /static/js/"+js, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			http.ServeFile(w, r, filepath.Join(root, "static", "js", js))
		})
	}
	mux.HandleFunc("GET /static/wasm_exec.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js"))
	})
	mux.HandleFunc("GET /static/keygen.wasm", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/wasm")
		http.ServeFile(w, r, wasmPath)
	})
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Cache-Control", "no-store")
		if strings.HasSuffix(r.URL.Path, ".wasm") || strings.HasSuffix(r.URL.Path, ".js") {
			w.Header().Set("X-Content-Type-Options", "nosniff")
		}
		mux.ServeHTTP(w, r)
	}))
}
