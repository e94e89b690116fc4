package harness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// SMTPServer is a real SMTP server (emersion/go-smtp) on 127.0.0.1 that
// accepts every message, without TLS or authentication, and keeps what it
// received. Point certdesk at it with
//
//	harness.StartServer(t, harness.ServerOptions{Args: []string{"--smtp-url", smtpSrv.URL()}})
//
// It is closed when the test ends.
type SMTPServer struct {
	// Addr is "127.0.0.1:PORT".
	Addr string

	mu      sync.Mutex
	msgs    []SMTPMessage
	changed chan struct{} // closed and replaced on every message
	srv     *smtp.Server
}

// SMTPMessage is one message as the SMTP server received it, taken apart.
type SMTPMessage struct {
	From string   // MAIL FROM
	To   []string // RCPT TO, in order
	Data []byte   // the raw message (headers and body)

	Header  mail.Header // nil when Data did not parse
	Subject string      // decoded (RFC 2047)
	Text    string      // the text/plain part, transfer encoding undone
	HTML    string      // the text/html part, transfer encoding undone
	// Attachments maps a filename to its content type.
	Attachments map[string]string
	// ParseErr says why Data could not be taken apart (nil when it could).
	ParseErr error
}

// StartSMTPServer listens on a free loopback port and serves until the test
// ends.
func StartSMTPServer(t testing.TB) *SMTPServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: smtp listen: %v", err)
	}
	s := &SMTPServer{Addr: ln.Addr().String(), changed: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &smtpSession{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.MaxMessageBytes = 32 << 20
	srv.ErrorLog = smtpDiscardLog{}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// URL is the --smtp-url for certdesk: "smtp://127.0.0.1:PORT".
func (s *SMTPServer) URL() string { return "smtp://" + s.Addr }

// Messages returns what the server received so far, oldest first.
func (s *SMTPServer) Messages() []SMTPMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SMTPMessage(nil), s.msgs...)
}

// WaitForMessage waits until a message with the envelope recipient to
// (case-insensitive) has arrived and returns the newest such message. It
// fails the test after timeout, listing what the server received.
func (s *SMTPServer) WaitForMessage(t testing.TB, to string, timeout time.Duration) SMTPMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		msgs, ch := s.msgs, s.changed
		s.mu.Unlock()
		for i := len(msgs) - 1; i >= 0; i-- {
			for _, rcpt := range msgs[i].To {
				if strings.EqualFold(rcpt, strings.TrimSpace(to)) {
					return msgs[i]
				}
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			var seen []string
			for _, m := range msgs {
				seen = append(seen, fmt.Sprintf("from=%s to=%v subject=%q", m.From, m.To, m.Subject))
			}
			t.Fatalf("harness: no SMTP message to %s within %v; received:\n%s", to, timeout, strings.Join(seen, "\n"))
		}
		select {
		case <-ch:
		case <-time.After(left):
		}
	}
}

func (s *SMTPServer) add(m SMTPMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

type smtpSession struct {
	s    *SMTPServer
	from string
	to   []string
}

func (x *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := SMTPMessage{From: x.from, To: append([]string(nil), x.to...), Data: b}
	m.ParseErr = parseSMTPMessage(&m)
	x.s.add(m)
	return nil
}

func (x *smtpSession) Reset()        { x.from, x.to = "", nil }
func (x *smtpSession) Logout() error { return nil }

type smtpDiscardLog struct{}

func (smtpDiscardLog) Printf(string, ...interface{}) {}
func (smtpDiscardLog) Println(...interface{})        {}

// parseSMTPMessage fills Header, Subject, Text, HTML and Attachments.
func parseSMTPMessage(m *SMTPMessage) error {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return err
	}
	m.Header = msg.Header
	m.Attachments = map[string]string{}
	var dec mime.WordDecoder
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	ctype := msg.Header.Get("Content-Type")
	if ctype == "" {
		ctype = "text/plain"
	}
	return walkSMTPPart(m, ctype, msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body)
}

func walkSMTPPart(m *SMTPMessage, ctype, cte, disp string, body io.Reader) error {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return fmt.Errorf("content type %q: %w", ctype, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			pt := part.Header.Get("Content-Type")
			if pt == "" {
				pt = "text/plain"
			}
			if err := walkSMTPPart(m, pt, part.Header.Get("Content-Transfer-Encoding"),
				part.Header.Get("Content-Disposition"), part); err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		b = bytes.Map(func(c rune) rune {
			if c == '\r' || c == '\n' {
				return -1
			}
			return c
		}, b)
		r = base64.NewDecoder(base64.StdEncoding, bytes.NewReader(b))
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s part: %w", mt, err)
	}
	if disp != "" {
		if d, dp, err := mime.ParseMediaType(disp); err == nil && d == "attachment" {
			m.Attachments[dp["filename"]] = mt
			return nil
		}
	}
	switch mt {
	case "text/plain":
		if m.Text == "" {
			m.Text = string(b)
		}
	case "text/html":
		if m.HTML == "" {
			m.HTML = string(b)
		}
	}
	return nil
}
