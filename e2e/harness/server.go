package harness

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Roles printed by the server's dev seed (DEV SIGN-IN lines).
const (
	RoleAccountAdmin    = "account_admin"
	RoleValidationAgent = "validation_agent"
	RoleCAAdmin         = "ca_admin"
)

// DefaultReadyTimeout is how long StartServer waits for /readyz.
const DefaultReadyTimeout = 30 * time.Second

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 20 * time.Second

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// BuildBinary builds ./cmd/certdesk once per test process (plain build, no
// -race) into a temporary folder removed by Main, and returns its path.
// CERTDESK_E2E_BINARY, when set, names a prebuilt binary to use instead.
// The static files (keygen.wasm, wasm_exec.js) are embedded at build time,
// so `make` builds them first.
func BuildBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("CERTDESK_E2E_BINARY"); p != "" {
			buildPath, buildErr = filepath.Abs(p)
			return
		}
		root, err := RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, err = os.MkdirTemp("", "certdesk-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		out := filepath.Join(buildDir, "certdesk")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/certdesk")
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/certdesk: %v\n%s", err, msg)
			return
		}
		buildPath = out
	})
	if buildErr != nil {
		t.Fatalf("harness: %v", buildErr)
	}
	return buildPath
}

// ServerOptions tune StartServer. The zero value starts a dev-mode server.
type ServerOptions struct {
	// NoDev leaves out --dev: no demo users, no DEV SIGN-IN lines, and a
	// SETUP LINK is logged instead.
	NoDev bool
	// Args are appended after the harness's own flags, so a later
	// "--base-url x" overrides the harness's value (Go's flag package keeps
	// the last one). Example: []string{"--smtp-url", "smtp://127.0.0.1:2525"}.
	Args []string
	// Env entries ("KEY=VALUE") are added to the environment. The test
	// process's own CERTDESK_* variables are never passed on.
	Env []string
	// DataDir reuses a data directory (default: a new t.TempDir()).
	DataDir string
	// ReadyTimeout overrides DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Binary overrides BuildBinary's result.
	Binary string
}

// Credentials of a demo user printed by the dev seed.
type Credentials struct {
	Email    string
	Password string
}

// Server is a running certdesk process.
type Server struct {
	// BaseURL is "http://127.0.0.1:PORT", without a trailing slash.
	BaseURL string
	// Addr is "127.0.0.1:PORT"; it stays the same across Restart.
	Addr string
	// DataDir is the server's data directory; it survives Restart.
	DataDir string
	// Users holds the DEV SIGN-IN credentials by role (RoleCAAdmin, ...)
	// of the current run: dev mode makes new passwords at every start.
	Users map[string]Credentials

	binary string
	opts   ServerOptions
	out    *outputLog

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited
	waitErr  error
	stopping bool // the harness asked the current process to exit
	mail     *mailClient
}

// StartServer starts certdesk serve on a free loopback port with a fresh
// data directory and waits until GET /readyz answers 200. The process is
// stopped (SIGTERM, then SIGKILL) when the test ends; if the test failed,
// its output is written to the test log.
func StartServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	bin := opts.Binary
	if bin == "" {
		bin = BuildBinary(t)
	}
	dataDir := opts.DataDir
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("harness: free port: %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &Server{
		BaseURL: "http://" + addr,
		Addr:    addr,
		DataDir: dataDir,
		binary:  bin,
		opts:    opts,
		out:     newOutputLog(),
	}
	t.Cleanup(func() {
		var crash *CrashError
		if err := s.Stop(); errors.As(err, &crash) {
			t.Errorf("harness: %v", err)
		} else if err != nil {
			t.Logf("harness: certdesk stop: %v", err)
		}
		if t.Failed() {
			t.Logf("certdesk output (%s):\n%s", s.BaseURL, s.out.tail(400))
		}
	})
	if err := s.start(); err != nil {
		t.Fatalf("harness: %v\n--- certdesk output ---\n%s", err, s.out.tail(200))
	}
	return s
}

// start launches the process and waits for readiness.
func (s *Server) start() error {
	args := []string{"serve", "--addr", s.Addr, "--data-dir", s.DataDir, "--base-url", s.BaseURL}
	if !s.opts.NoDev {
		args = append(args, "--dev")
	}
	args = append(args, s.opts.Args...)
	cmd := exec.Command(s.binary, args...)
	cmd.Env = append(cleanEnv(), s.opts.Env...)
	cmd.Stdout = s.out.writer("")
	cmd.Stderr = s.out.writer("")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	s.out.beginRun()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.binary, err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.done, s.waitErr, s.mail, s.stopping = cmd, done, nil, nil, false
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(done)
	}()

	timeout := s.opts.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	if err := s.waitReady(done, timeout); err != nil {
		_ = s.Kill()
		return err
	}
	// The dev seed prints its lines before the listener opens, so they
	// are all there once /readyz answers.
	s.Users = parseDevUsers(s.out.current())
	if !s.opts.NoDev && len(s.Users) == 0 {
		return errors.New("dev mode but no DEV SIGN-IN lines in the output")
	}
	return nil
}

func (s *Server) waitReady(done <-chan struct{}, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		select {
		case <-done:
			s.mu.Lock()
			err := s.waitErr
			s.mu.Unlock()
			return fmt.Errorf("certdesk exited before it was ready: %v", err)
		default:
		}
		resp, err := client.Get(s.BaseURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("certdesk not ready at %s/readyz after %v (last: %s)", s.BaseURL, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Running reports whether the process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and waits for a graceful exit (SIGKILL after 20 s).
// It returns an error if the process did not exit with status 0 on its
// own. Stopping a stopped server returns nil.
func (s *Server) Stop() error {
	return s.signal(syscall.SIGTERM)
}

// CrashError reports that the server had exited on its own, with an
// error, before Stop or Kill asked it to. StartServer's cleanup fails the
// test with it.
type CrashError struct{ Err error }

func (e *CrashError) Error() string { return "certdesk had exited on its own: " + e.Err.Error() }

// Kill sends SIGKILL to the server's process group and waits for it.
func (s *Server) Kill() error {
	err := s.signal(syscall.SIGKILL)
	var ee *exec.ExitError
	if errors.As(err, &ee) && !errors.As(err, new(*CrashError)) {
		return nil // killed, as asked
	}
	return err
}

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	select {
	case <-done:
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.stopping && s.waitErr != nil {
			return &CrashError{Err: s.waitErr}
		}
		return nil
	default:
	}
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	if sig == syscall.SIGKILL {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	} else {
		_ = cmd.Process.Signal(sig)
	}
	select {
	case <-done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("certdesk did not exit within %v of %v; killed", stopGrace, sig)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waitErr
}

// Restart stops the server gracefully (if it runs) and starts it again on
// the same port with the same data directory and options, then waits for
// /readyz. Users is replaced by the new run's credentials.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Fatalf("harness: stop before restart: %v", err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("harness: restart: %v\n--- certdesk output ---\n%s", err, s.out.tail(200))
	}
}

// Output returns everything the server printed (stdout and stderr, line by
// line in arrival order) across all runs; a line "=== harness: start N ==="
// opens each run.
func (s *Server) Output() string { return s.out.all() }

// WaitForOutput waits until a line of the current run contains substr and
// returns that line (the first such line).
func (s *Server) WaitForOutput(substr string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if line, ok := s.out.find(substr); ok {
			return line, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no output line containing %q within %v", substr, timeout)
		}
		s.out.waitChange(time.Until(deadline))
	}
}

var setupLinkRE = regexp.MustCompile(`SETUP LINK (https?://[^\s"']+)`)

// SetupLink returns the URL of the current run's "SETUP LINK <url>" log
// line, or "" if there is none (dev mode seeds a CA administrator, so ask
// for it with ServerOptions{NoDev: true}).
func (s *Server) SetupLink() string {
	m := setupLinkRE.FindStringSubmatch(s.out.current())
	if m == nil {
		return ""
	}
	return m[1]
}

// URL joins BaseURL and a path ("/signin").
func (s *Server) URL(path string) string {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return s.BaseURL + path
}

// User returns the dev credentials for role, failing the test if the run
// printed none.
func (s *Server) User(t testing.TB, role string) Credentials {
	t.Helper()
	c, ok := s.Users[role]
	if !ok {
		t.Fatalf("harness: no DEV SIGN-IN line for role %q (dev mode off?)", role)
	}
	return c
}

var devLineRE = regexp.MustCompile(`(?m)^DEV SIGN-IN role=(\S+) email=(\S+) password=(\S+)\s*$`)

func parseDevUsers(out string) map[string]Credentials {
	users := map[string]Credentials{}
	for _, m := range devLineRE.FindAllStringSubmatch(out, -1) {
		users[m[1]] = Credentials{Email: m[2], Password: m[3]}
	}
	return users
}

// freePort asks the kernel for a free loopback port and releases it.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// cleanEnv is the test process's environment without CERTDESK_* variables,
// so a developer's shell settings cannot change what a test sees.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CERTDESK_") {
			env = append(env, kv)
		}
	}
	return env
}

// outputLog collects whole lines from the process's stdout and stderr.
type outputLog struct {
	mu       sync.Mutex
	lines    []string
	runStart int // index of the current run's first line
	runs     int
	changed  chan struct{} // closed and replaced on every new line
}

func newOutputLog() *outputLog { return &outputLog{changed: make(chan struct{})} }

func (o *outputLog) beginRun() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.runs++
	o.lines = append(o.lines, fmt.Sprintf("=== harness: start %d ===", o.runs))
	o.runStart = len(o.lines)
}

func (o *outputLog) add(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lines = append(o.lines, line)
	close(o.changed)
	o.changed = make(chan struct{})
}

func (o *outputLog) waitChange(d time.Duration) {
	if d <= 0 {
		return
	}
	o.mu.Lock()
	ch := o.changed
	o.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(d):
	}
}

func (o *outputLog) all() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return joinLines(o.lines)
}

func (o *outputLog) current() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return joinLines(o.lines[o.runStart:])
}

func (o *outputLog) tail(n int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.lines
	if len(l) > n {
		l = append([]string{fmt.Sprintf("... (%d earlier lines)", len(l)-n)}, l[len(l)-n:]...)
	}
	return joinLines(l)
}

func (o *outputLog) find(substr string) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range o.lines[o.runStart:] {
		if strings.Contains(l, substr) {
			return l, true
		}
	}
	return "", false
}

func joinLines(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

// writer returns an io.Writer that splits a stream into lines.
func (o *outputLog) writer(prefix string) *lineWriter {
	return &lineWriter{log: o, prefix: prefix}
}

type lineWriter struct {
	log     *outputLog
	prefix  string
	partial bytes.Buffer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.partial.Write(p)
	for {
		b := w.partial.Bytes()
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		w.log.add(w.prefix + strings.TrimRight(string(b[:i]), "\r"))
		w.partial.Next(i + 1)
	}
	return len(p), nil
}
