package harness

import (
	"bytes"
	"strings"
	"sync"

	"github.com/mxschmitt/playwright-go"
)

// RecordedRequest is one request the browser sent.
type RecordedRequest struct {
	Method  string
	URL     string
	Headers map[string]string // as Playwright reports them (lower-case names)
	Body    []byte            // post body; nil when there is none
}

// RequestLog records every request of a browser context, in order.
type RequestLog struct {
	mu   sync.Mutex
	reqs []RecordedRequest
}

// RecordRequests starts recording every request sent by the page's
// browser context: the page itself, its workers, and any other page the
// context opens (popups, downloads). Call it before the action under test.
func RecordRequests(page playwright.Page) *RequestLog {
	l := &RequestLog{}
	page.Context().OnRequest(func(r playwright.Request) {
		rr := RecordedRequest{Method: r.Method(), URL: r.URL(), Headers: r.Headers()}
		if body, err := r.PostDataBuffer(); err == nil && len(body) > 0 {
			rr.Body = body
		}
		l.mu.Lock()
		l.reqs = append(l.reqs, rr)
		l.mu.Unlock()
	})
	return l
}

// All returns a copy of the requests recorded so far.
func (l *RequestLog) All() []RecordedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]RecordedRequest(nil), l.reqs...)
}

// Containing returns the recorded requests whose body or URL contains needle
// (for "this secret never left the page" checks, search both).
func (l *RequestLog) Containing(needle []byte) []RecordedRequest {
	var out []RecordedRequest
	for _, r := range l.All() {
		if bytes.Contains(r.Body, needle) || strings.Contains(r.URL, string(needle)) {
			out = append(out, r)
		}
	}
	return out
}
