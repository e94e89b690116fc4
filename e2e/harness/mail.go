package harness

// The mail helpers depend on the dev mailbox contract, which the server
// offers in dev mode (no --smtp-url) to CA administrators:
//
//	GET /dev/mailbox.json  (CA admin session cookie)
//	-> 200 application/json
//	   [{"id":1,"to":"...","subject":"...","text":"...","html":"...","kind":"...",
//	     "attachments":[{"filename":"...","content_type":"..."}]}]
//
// and on the sign-in form: GET /signin carries a hidden input named "csrf";
// POST /signin with email, password and csrf answers 303 on success.
// If that contract changes, change this file.

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Message is one email in the dev mailbox.
type Message struct {
	ID          int64        `json:"id"`
	To          string       `json:"to"`
	Subject     string       `json:"subject"`
	Text        string       `json:"text"`
	HTML        string       `json:"html"`
	Kind        string       `json:"kind"`
	Attachments []Attachment `json:"attachments"`
}

// Attachment names one attachment of a Message.
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
}

// Mail signs in over HTTP as the dev ca_admin (once per run, the session
// is kept) and returns the dev mailbox, oldest first. Depends on the
// /dev/mailbox.json contract above.
func (s *Server) Mail(t testing.TB) []Message {
	t.Helper()
	msgs, err := s.fetchMail()
	if err != nil {
		t.Fatalf("harness: dev mailbox: %v", err)
	}
	return msgs
}

// WaitForMail polls the dev mailbox (every 100 ms) until a message to the
// address `to` (case-insensitive, also matched inside "Name <addr>") of
// the given kind ("" for any kind) is there, and returns the newest such
// message. It fails the test after timeout, listing what the mailbox held.
func (s *Server) WaitForMail(t testing.TB, to, kind string, timeout time.Duration) Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := s.fetchMail()
		if err != nil {
			t.Fatalf("harness: dev mailbox: %v", err)
		}
		if m, ok := newestMatch(msgs, to, kind); ok {
			return m
		}
		if time.Now().After(deadline) {
			var seen []string
			for _, m := range msgs {
				seen = append(seen, fmt.Sprintf("#%d to=%s kind=%s subject=%q", m.ID, m.To, m.Kind, m.Subject))
			}
			t.Fatalf("harness: no mail to %s of kind %q within %v; mailbox:\n%s", to, kind, timeout, strings.Join(seen, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func newestMatch(msgs []Message, to, kind string) (Message, bool) {
	sorted := append([]Message(nil), msgs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].ID > sorted[j].ID })
	for _, m := range sorted {
		if (kind == "" || m.Kind == kind) && addressMatches(m.To, to) {
			return m, true
		}
	}
	return Message{}, false
}

func addressMatches(field, addr string) bool {
	field, addr = strings.ToLower(field), strings.ToLower(strings.TrimSpace(addr))
	if field == addr {
		return true
	}
	for _, part := range strings.Split(field, ",") {
		part = strings.TrimSpace(part)
		if part == addr || strings.HasSuffix(part, "<"+addr+">") {
			return true
		}
	}
	return false
}

var linkRE = regexp.MustCompile(`https?://[^\s"'<>]+`)

// ExtractLink returns the first absolute http(s) URL in text (plain text or
// HTML; &amp; is decoded) whose path starts with pathPrefix, e.g.
// ExtractLink(msg.Text, "/keygen/"). It returns "" when there is none.
func ExtractLink(text, pathPrefix string) string {
	for _, raw := range linkRE.FindAllString(text, -1) {
		raw = html.UnescapeString(raw)
		raw = strings.TrimRight(raw, ".,;:!?)]}")
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		if strings.HasPrefix(u.Path, pathPrefix) {
			return raw
		}
	}
	return ""
}

// mailClient is an HTTP client signed in as the dev CA administrator.
type mailClient struct {
	http *http.Client
}

func (s *Server) fetchMail() ([]Message, error) {
	s.mu.Lock()
	mc := s.mail
	s.mu.Unlock()
	fresh := false
	if mc == nil {
		c, ok := s.Users[RoleCAAdmin]
		if !ok {
			return nil, errors.New("no ca_admin DEV SIGN-IN credentials (the dev mailbox needs dev mode)")
		}
		var err error
		if mc, err = signInHTTP(s.BaseURL, c); err != nil {
			return nil, err
		}
		fresh = true
		s.mu.Lock()
		s.mail = mc
		s.mu.Unlock()
	}
	msgs, err := getMailbox(mc, s.BaseURL)
	if errors.Is(err, errNotSignedIn) && !fresh {
		// session ended (e.g. a restart with new keys): sign in again once
		s.mu.Lock()
		s.mail = nil
		s.mu.Unlock()
		return s.fetchMail()
	}
	return msgs, err
}

var errNotSignedIn = errors.New("not signed in")

var csrfInputRE = regexp.MustCompile(`<input[^>]*\bname="csrf"[^>]*>`)
var valueAttrRE = regexp.MustCompile(`\bvalue="([^"]*)"`)

// csrfToken returns the value of the form field named csrf in page.
func csrfToken(page string) (string, error) {
	in := csrfInputRE.FindString(page)
	if in == "" {
		return "", errors.New(`no <input name="csrf"> on the page`)
	}
	m := valueAttrRE.FindStringSubmatch(in)
	if m == nil || m[1] == "" {
		return "", errors.New("csrf input without a value")
	}
	return html.UnescapeString(m[1]), nil
}

// signInHTTP signs in through the HTML form with a cookie jar.
func signInHTTP(baseURL string, c Credentials) (*mailClient, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // look at the sign-in answer itself
		},
	}
	resp, err := hc.Get(baseURL + "/signin")
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /signin: %s", resp.Status)
	}
	tok, err := csrfToken(string(body))
	if err != nil {
		return nil, fmt.Errorf("GET /signin: %w", err)
	}
	form := url.Values{"email": {c.Email}, "password": {c.Password}, "csrf": {tok}}
	resp, err = hc.PostForm(baseURL+"/signin", form)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("POST /signin as %s: %s (expected a redirect)", c.Email, resp.Status)
	}
	if loc := resp.Header.Get("Location"); strings.HasSuffix(loc, "/signin") {
		return nil, fmt.Errorf("POST /signin as %s: redirected back to /signin", c.Email)
	}
	return &mailClient{http: hc}, nil
}

func getMailbox(mc *mailClient, baseURL string) ([]Message, error) {
	req, err := http.NewRequest(http.MethodGet, baseURL+"/dev/mailbox.json", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := mc.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized,
		resp.StatusCode/100 == 3 && strings.HasSuffix(resp.Header.Get("Location"), "/signin"):
		return nil, errNotSignedIn
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET /dev/mailbox.json: %s: %.300s", resp.Status, body)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil, fmt.Errorf("GET /dev/mailbox.json: Content-Type %q, want application/json", resp.Header.Get("Content-Type"))
	}
	var msgs []Message
	if err := json.Unmarshal(body, &msgs); err != nil {
		return nil, fmt.Errorf("GET /dev/mailbox.json: %w", err)
	}
	return msgs, nil
}
