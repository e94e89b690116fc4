package validation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// webServer is an httptest server on 127.0.0.1 that counts TCP connections.
type webServer struct {
	*httptest.Server
	conns atomic.Int64
	port  int
}

func startWeb(t *testing.T, tlsOn bool, h http.Handler) *webServer {
	t.Helper()
	ws := &webServer{}
	ws.Server = httptest.NewUnstartedServer(h)
	ws.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			ws.conns.Add(1)
		}
	}
	if tlsOn {
		ws.StartTLS()
	} else {
		ws.Start()
	}
	t.Cleanup(ws.Close)
	_, p, _ := net.SplitHostPort(ws.Listener.Addr().String())
	ws.port, _ = strconv.Atoi(p)
	return ws
}

// httpFixture: names in the test DNS, a web server on 127.0.0.1, and a
// Checker whose HTTP port is the server's.
type httpFixture struct {
	dns *testDNS
	web *webServer
	mux *http.ServeMux
}

func newHTTPFixture(t *testing.T) *httpFixture {
	f := &httpFixture{mux: http.NewServeMux()}
	f.dns = startDNS(t,
		`site.example.test. 60 IN A 127.0.0.1`,
		`www.site.example.test. 60 IN CNAME site.example.test.`,
		`second.example.test. 60 IN A 127.0.0.2`,
		`second6.example.test. 60 IN AAAA ::1`,
		`noaddr.example.test. 60 IN TXT "no address here"`,
	)
	f.web = startWeb(t, false, f.mux)
	return f
}

func (f *httpFixture) checker(t *testing.T, mod func(*Config)) *Checker {
	return newTestChecker(t, f.dns, func(c *Config) {
		c.HTTPPort = f.web.port
		c.AllowLoopback = true
		c.HTTPTimeout = 2 * time.Second
		if mod != nil {
			mod(c)
		}
	})
}

func (f *httpFixture) url(host, path string) string {
	return fmt.Sprintf("http://%s:%d%s", host, f.web.port, path)
}

func serveText(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(body))
	}
}

func TestCheckHTTPFileFound(t *testing.T) {
	f := newHTTPFixture(t)
	var gotHost, gotPath string
	f.mux.HandleFunc(HTTPPath, func(w http.ResponseWriter, r *http.Request) {
		gotHost, gotPath = r.Host, r.URL.String()
		_, _ = w.Write([]byte(rv + "\n"))
	})
	c := f.checker(t, nil)
	r, err := c.CheckHTTP(context.Background(), "site.example.test", rv)
	if err != nil || !r.OK {
		t.Fatalf("got %+v, %v; want OK", r, err)
	}
	if gotHost != "site.example.test:"+strconv.Itoa(f.web.port) || gotPath != HTTPPath {
		t.Fatalf("request went to host %q path %q", gotHost, gotPath)
	}
	if strings.Contains(gotPath, rv) {
		t.Fatal("TLS BR 3.2.2.4.18: the random value must not appear in the request")
	}
	if r.Found[0] != "GET "+f.url("site.example.test", HTTPPath)+": 200 OK" || r.Method != MethodHTTP {
		t.Fatalf("Found = %q", r.Found)
	}
}

func TestCheckHTTPNotOK(t *testing.T) {
	f := newHTTPFixture(t)
	f.mux.HandleFunc(HTTPPath, serveText("some-other-value"))
	c := f.checker(t, nil)
	r, err := c.CheckHTTP(context.Background(), "site.example.test", rv)
	if err != nil || r.OK || !strings.Contains(r.Detail, "does not contain") || r.Found[1] != `body: "some-other-value"` {
		t.Fatalf("wrong value: %+v, %v", r, err)
	}

	f2 := newHTTPFixture(t)
	f2.mux.HandleFunc(HTTPPath, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, rv, http.StatusNotFound) // value in a 404 body must not count
	})
	c2 := f2.checker(t, nil)
	r, err = c2.CheckHTTP(context.Background(), "site.example.test", rv)
	if err != nil || r.OK || !strings.Contains(r.Detail, "2xx") {
		t.Fatalf("404: %+v, %v", r, err)
	}

	_, err = c.CheckHTTP(context.Background(), "noaddr.example.test", rv)
	if err == nil || !strings.Contains(err.Error(), "no A or AAAA") {
		t.Fatalf("name without addresses: err = %v", err)
	}
}

func TestCheckHTTPLoopbackRefusedAtDial(t *testing.T) {
	f := newHTTPFixture(t)
	f.mux.HandleFunc(HTTPPath, serveText(rv))
	c := f.checker(t, func(c *Config) { c.AllowLoopback = false })
	r, err := c.CheckHTTP(context.Background(), "site.example.test", rv)
	if !errors.Is(err, ErrAddressNotAllowed) || r.OK {
		t.Fatalf("got %+v, %v; want ErrAddressNotAllowed", r, err)
	}
	if !strings.Contains(err.Error(), "address 127.0.0.1 is not allowed (loopback)") ||
		!strings.Contains(r.Detail, "127.0.0.1 is not allowed") {
		t.Fatalf("error %q / detail %q should say the address is not allowed", err, r.Detail)
	}
	if n := f.web.conns.Load(); n != 0 {
		t.Fatalf("server saw %d connections; the refusal must come before connecting", n)
	}
}

func TestCheckHTTPRedirects(t *testing.T) {
	refuse := func(bad ...string) func(netip.Addr) bool {
		return func(ip netip.Addr) bool {
			for _, b := range bad {
				if ip == netip.MustParseAddr(b) {
					return false
				}
			}
			return true
		}
	}
	redirectTo := func(status int, target func(f *httpFixture) string) func(f *httpFixture) http.HandlerFunc {
		return func(f *httpFixture) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", target(f))
				w.WriteHeader(status)
			}
		}
	}
	hopsFrom := func(n int) func(f *httpFixture) http.HandlerFunc {
		return redirectTo(http.StatusFound, func(f *httpFixture) string { return fmt.Sprintf("/hops?n=%d", n-1) })
	}
	cases := []struct {
		name      string
		file      func(f *httpFixture) http.HandlerFunc
		policy    func(netip.Addr) bool
		wantOK    bool
		wantErr   error
		errHas    string
		wantConns int64 // connections the loopback server saw (0: do not check)
	}{
		{name: "redirect to another name on the same address",
			file:   redirectTo(http.StatusMovedPermanently, func(f *httpFixture) string { return f.url("www.site.example.test", "/final") }),
			wantOK: true, wantConns: 2},
		{name: "10 redirects are followed", file: hopsFrom(10), wantOK: true, wantConns: 11},
		{name: "11 redirects are refused", file: hopsFrom(11), wantErr: ErrTooManyRedirects, wantConns: 11},
		{name: "redirect to a name on a refused IPv4 address is refused at dial",
			file:   redirectTo(http.StatusFound, func(f *httpFixture) string { return f.url("second.example.test", "/final") }),
			policy: refuse("127.0.0.2"), wantErr: ErrAddressNotAllowed, errHas: "address 127.0.0.2 is not allowed", wantConns: 1},
		{name: "redirect to a name on a refused IPv6 address is refused at dial",
			file:   redirectTo(http.StatusFound, func(f *httpFixture) string { return f.url("second6.example.test", "/final") }),
			policy: refuse("::1"), wantErr: ErrAddressNotAllowed, errHas: "address ::1 is not allowed", wantConns: 1},
		{name: "redirect to a refused IP literal is refused at dial",
			file:   redirectTo(http.StatusTemporaryRedirect, func(f *httpFixture) string { return f.url("127.0.0.2", "/final") }),
			policy: refuse("127.0.0.2"), wantErr: ErrAddressNotAllowed, errHas: "127.0.0.2", wantConns: 1},
		{name: "redirect to an unauthorized port is refused",
			file:    redirectTo(http.StatusFound, func(f *httpFixture) string { return "http://site.example.test:8081/final" }),
			wantErr: ErrRedirectNotAllowed, errHas: "port 8081", wantConns: 1},
		{name: "redirect to another scheme is refused",
			file:    redirectTo(http.StatusFound, func(f *httpFixture) string { return "ftp://site.example.test/final" }),
			wantErr: ErrRedirectNotAllowed, errHas: "ftp", wantConns: 1},
		{name: "303 is not an allowed redirect status",
			file:    redirectTo(http.StatusSeeOther, func(f *httpFixture) string { return "/final" }),
			wantErr: ErrRedirectNotAllowed, errHas: "303", wantConns: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newHTTPFixture(t)
			f.mux.HandleFunc(HTTPPath, tc.file(f))
			f.mux.HandleFunc("/final", serveText(rv))
			f.mux.HandleFunc("/hops", func(w http.ResponseWriter, r *http.Request) {
				n, _ := strconv.Atoi(r.URL.Query().Get("n"))
				if n <= 0 {
					serveText(rv)(w, r)
					return
				}
				http.Redirect(w, r, fmt.Sprintf("/hops?n=%d", n-1), http.StatusTemporaryRedirect)
			})
			c := f.checker(t, func(c *Config) { c.AddressPolicy = tc.policy })
			r, err := c.CheckHTTP(context.Background(), "site.example.test", rv)
			if r.OK != tc.wantOK {
				t.Fatalf("OK = %v (%+v, %v); want %v", r.OK, r, err, tc.wantOK)
			}
			if tc.wantErr == nil && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v; want %v", err, tc.wantErr)
			}
			if tc.errHas != "" && !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err %q does not contain %q", err, tc.errHas)
			}
			if tc.wantConns != 0 {
				if n := f.web.conns.Load(); n != tc.wantConns {
					t.Fatalf("server saw %d connections; want %d", n, tc.wantConns)
				}
			}
		})
	}
}

// A name that resolved to an allowed address for the first request and to
// a refused one afterwards (DNS rebinding) is refused: the policy runs at
// every dial, not once per name.
func TestCheckHTTPRebindingRefusedAtDial(t *testing.T) {
	f := newHTTPFixture(t)
	f.mux.HandleFunc(HTTPPath, func(w http.ResponseWriter, r *http.Request) {
		f.dns.Replace(t, "site.example.test", `site.example.test. 0 IN A 127.0.0.3`)
		http.Redirect(w, r, "/final", http.StatusFound)
	})
	f.mux.HandleFunc("/final", serveText(rv))
	c := f.checker(t, func(c *Config) {
		c.AddressPolicy = func(ip netip.Addr) bool { return ip != netip.MustParseAddr("127.0.0.3") }
	})
	r, err := c.CheckHTTP(context.Background(), "site.example.test", rv)
	if r.OK || !errors.Is(err, ErrAddressNotAllowed) || !strings.Contains(err.Error(), "127.0.0.3") {
		t.Fatalf("got %+v, %v; want refusal of 127.0.0.3", r, err)
	}
}

func TestCheckHTTPSRedirect(t *testing.T) {
	f := newHTTPFixture(t)
	tlsWeb := startWeb(t, true, serveText("file: "+rv))
	f.mux.HandleFunc(HTTPPath, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("https://site.example.test:%d/final", tlsWeb.port), http.StatusPermanentRedirect)
	})
	c := f.checker(t, func(c *Config) { c.HTTPSPort = tlsWeb.port })
	r, err := c.CheckHTTP(context.Background(), "site.example.test", rv)
	if err != nil || !r.OK || !strings.HasPrefix(r.Found[0], "GET https://site.example.test:") {
		t.Fatalf("got %+v, %v; want OK over https", r, err)
	}
}

func TestCheckHTTPBodyLimit(t *testing.T) {
	f := newHTTPFixture(t)
	f.mux.HandleFunc(HTTPPath, func(w http.ResponseWriter, r *http.Request) {
		size, _ := strconv.Atoi(r.Host[:strings.IndexByte(r.Host, '.')][len("n"):])
		_, _ = w.Write([]byte(rv))
		_, _ = w.Write([]byte(strings.Repeat("x", size-len(rv))))
	})
	f.dns.Add(t, `n65536.example.test. 60 IN A 127.0.0.1`, `n65537.example.test. 60 IN A 127.0.0.1`,
		`n10000000.example.test. 60 IN A 127.0.0.1`)
	c := f.checker(t, nil)
	if r, err := c.CheckHTTP(context.Background(), "n65536.example.test", rv); err != nil || !r.OK {
		t.Fatalf("a 64 KiB file: %+v, %v; want OK", r, err)
	}
	for _, d := range []string{"n65537.example.test", "n10000000.example.test"} {
		r, err := c.CheckHTTP(context.Background(), d, rv)
		if r.OK || !errors.Is(err, ErrBodyTooLarge) || !strings.Contains(r.Detail, "larger than 65536 bytes") {
			t.Fatalf("%s: %+v, %v; want ErrBodyTooLarge", d, r, err)
		}
	}
}

func TestCheckHTTPTimeout(t *testing.T) {
	f := newHTTPFixture(t)
	release := make(chan struct{})
	defer close(release)
	f.mux.HandleFunc(HTTPPath, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c := f.checker(t, func(c *Config) { c.HTTPTimeout = 300 * time.Millisecond })
	start := time.Now()
	r, err := c.CheckHTTP(context.Background(), "site.example.test", rv)
	if r.OK || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %+v, %v; want a deadline error", r, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v; want about 300ms", d)
	}
}
