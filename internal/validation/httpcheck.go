package validation

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"
)

// HTTPPath is where the file of TLS BR 3.2.2.4.18 is fetched from. The
// random value is never part of the request (3.2.2.4.18 item 1).
const HTTPPath = "/.well-known/pki-validation/fileauth.txt"

// Errors of the HTTP check (each is wrapped; test with errors.Is).
var (
	ErrTooManyRedirects   = errors.New("too many redirects")
	ErrRedirectNotAllowed = errors.New("redirect not allowed")
	ErrBodyTooLarge       = errors.New("response body too large")
)

// CheckHTTP fetches http://<domain>/.well-known/pki-validation/fileauth.txt
// and checks that value appears in the body (TLS BR 3.2.2.4.18,
// Agreed-Upon Change to Website v2):
//   - only the Authorized Ports: http on Config.HTTPPort (80), https on
//     Config.HTTPSPort (443);
//   - at most MaxRedirects redirects, only 301/302/307/308, only to http or
//     https URLs on those ports;
//   - a 2xx response is required;
//   - names are resolved with the Checker's own Resolver, and every
//     connection's address is checked by AddressAllowed inside
//     net.Dialer.Control, so a redirect or a DNS answer that changed since
//     an earlier lookup cannot reach a non-public address;
//   - the body is read up to Config.HTTPBodyLimit; a larger body fails;
//   - the whole fetch is bounded by Config.HTTPTimeout; no proxy is used.
//
// The certificate of an https server is not verified: control of the file
// content, reached through the domain's own DNS, is what is validated.
func (c *Checker) CheckHTTP(ctx context.Context, domain, value string) (Result, error) {
	r := Result{Method: MethodHTTP}
	d, err := normDomain(domain)
	if err != nil {
		return fail(r, err)
	}
	if err := checkValue(value); err != nil {
		return fail(r, err)
	}
	host := d
	if c.cfg.HTTPPort != 80 {
		host = net.JoinHostPort(d, strconv.Itoa(c.cfg.HTTPPort))
	}
	u := (&url.URL{Scheme: "http", Host: host, Path: HTTPPath}).String()
	r.Expected = fmt.Sprintf("the value %q in the file at %s", value, u)

	ctx, cancel := context.WithTimeout(ctx, c.cfg.HTTPTimeout)
	defer cancel()
	tr := c.transport()
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: c.checkRedirect}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(r, err)
	}
	req.Header.Set("User-Agent", "certdesk-validation/1")
	req.Header.Set("Accept", "text/plain, */*")
	resp, err := client.Do(req)
	if err != nil {
		r.Detail = fmt.Sprintf("Could not fetch %s: %v.", u, unwrapURLError(err))
		return fail(r, err)
	}
	defer resp.Body.Close()
	final := resp.Request.URL.String()
	r.Found = append(r.Found, fmt.Sprintf("GET %s: %s", final, resp.Status))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// TLS BR 3.2.2.4.18 item 2: a 2xx status is required.
		r.Detail = fmt.Sprintf("%s answered %s; a 2xx status is required.", final, resp.Status)
		return r, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.HTTPBodyLimit+1))
	if err != nil {
		r.Detail = fmt.Sprintf("Reading %s failed: %v.", final, err)
		return fail(r, err)
	}
	if int64(len(body)) > c.cfg.HTTPBodyLimit {
		err := fmt.Errorf("%w: %s is larger than %d bytes", ErrBodyTooLarge, final, c.cfg.HTTPBodyLimit)
		r.Detail = fmt.Sprintf("The file at %s is larger than %d bytes.", final, c.cfg.HTTPBodyLimit)
		return fail(r, err)
	}
	r.Found = append(r.Found, "body: "+excerpt(body, 200))
	if bytes.Contains(body, []byte(value)) {
		r.OK = true
		r.Detail = fmt.Sprintf("Found the value in the file at %s.", final)
	} else {
		r.Detail = fmt.Sprintf("The file at %s (%d bytes) does not contain the expected value.", final, len(body))
	}
	return r, nil
}

// transport builds a fresh transport for one check: no proxy, no
// keep-alive, our own dialer.
func (c *Checker) transport() *http.Transport {
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            c.dialContext,
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // see CheckHTTP
		TLSHandshakeTimeout:    c.cfg.HTTPDialTimeout,
		ResponseHeaderTimeout:  c.cfg.HTTPTimeout,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 32 << 10,
		ForceAttemptHTTP2:      false,
	}
}

// checkRedirect applies TLS BR 3.2.2.4.18's redirect rules.
func (c *Checker) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return fmt.Errorf("%w: more than %d", ErrTooManyRedirects, MaxRedirects)
	}
	if req.Response != nil {
		switch req.Response.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			return fmt.Errorf("%w: status %d is not 301, 302, 307 or 308", ErrRedirectNotAllowed, req.Response.StatusCode)
		}
	}
	return c.urlAllowed(req.URL)
}

// urlAllowed accepts http on HTTPPort and https on HTTPSPort only.
func (c *Checker) urlAllowed(u *url.URL) error {
	var want int
	switch u.Scheme {
	case "http":
		want = c.cfg.HTTPPort
	case "https":
		want = c.cfg.HTTPSPort
	default:
		return fmt.Errorf("%w: scheme %q is not http or https", ErrRedirectNotAllowed, u.Scheme)
	}
	p := u.Port()
	if p == "" {
		if u.Scheme == "http" {
			p = "80"
		} else {
			p = "443"
		}
	}
	if p != strconv.Itoa(want) {
		return fmt.Errorf("%w: port %s is not the authorized port %d for %s", ErrRedirectNotAllowed, p, want, u.Scheme)
	}
	return nil
}

// dialContext resolves host with the Checker's resolver and dials each
// address in turn; the address policy is enforced in Dialer.Control, at
// the moment of connecting.
func (c *Checker) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || (port != c.cfg.HTTPPort && port != c.cfg.HTTPSPort) {
		return nil, fmt.Errorf("%w: port %s is not an authorized port", ErrRedirectNotAllowed, portStr)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = c.res.LookupIP(ctx, host)
		if err != nil {
			return nil, err
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("no A or AAAA records for %s", host)
		}
	}
	d := &net.Dialer{Timeout: c.cfg.HTTPDialTimeout, Control: c.dialControl}
	var errs []error
	for _, ip := range ips {
		conn, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// dialControl runs just before connect(2): the last point at which the
// destination address can be refused.
func (c *Checker) dialControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrAddressNotAllowed, address)
	}
	return c.addressAllowed(ap.Addr())
}

// unwrapURLError drops the "Get URL:" prefix net/http adds.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// excerpt returns the first n bytes of b as a quoted, printable string.
func excerpt(b []byte, n int) string {
	cut := false
	if len(b) > n {
		b, cut = b[:n], true
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	s := strconv.Quote(strings.TrimSpace(string(b)))
	if cut {
		s += "..."
	}
	return s
}
