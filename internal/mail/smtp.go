package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"certdesk/internal/portal"
)

// DefaultSMTPTimeout bounds the connection and each SMTP command.
const DefaultSMTPTimeout = 30 * time.Second

// SMTPConfig configures an SMTPSender.
type SMTPConfig struct {
	// URL of the submission server:
	//   smtp://host[:port]           port 25 by default; STARTTLS is used when
	//                                the server offers it (opportunistic)
	//   smtp+starttls://host[:port]  port 587 by default; STARTTLS required
	//   smtps://host[:port]          port 465 by default; implicit TLS
	// Credentials go in the user info, URL-escaped: smtps://user:p%40ss@host.
	// With credentials the mechanism is discovered from the server's AUTH
	// list; over a connection without TLS only challenge mechanisms
	// (SCRAM, CRAM-MD5) are used, never PLAIN or LOGIN.
	URL string
	// From is the sender, e.g. "certdesk <noreply@example.com>".
	From string
	// Timeout (DefaultSMTPTimeout if 0) is go-mail's connection deadline:
	// one for dial, EHLO, STARTTLS and AUTH together and one more for the
	// message (MAIL, RCPT, DATA), so one Send takes at most about
	// 2 x Timeout. Keep that below Worker.Lease/2 (defaults: 30 s, 5 min),
	// so a slow server cannot hold a row past its lease.
	Timeout time.Duration
	// TLSConfig, when set, is used for STARTTLS and smtps:// (e.g. RootCAs
	// for a private CA). ServerName defaults to the URL's host.
	TLSConfig *tls.Config
	// Clock gives the Date header (portal.SystemClock if nil).
	Clock portal.Clock
}

// SMTPSender delivers messages to one SMTP server, one connection per
// message, with the row's fixed Message-ID.
type SMTPSender struct {
	from    string
	host    string
	port    int
	opts    []gomail.Option
	clock   portal.Clock
	display string // URL without credentials, for logs
}

// NewSMTPSender parses cfg and returns a sender. It does not connect.
func NewSMTPSender(cfg SMTPConfig) (*SMTPSender, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("mail: SMTP URL: not a URL")
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("mail: SMTP URL %q has no host", redact(u))
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("mail: SMTP URL %q: no path, query or fragment allowed", redact(u))
	}
	if _, err := netmail.ParseAddress(cfg.From); err != nil || strings.ContainsAny(cfg.From, "\r\n") {
		return nil, fmt.Errorf("mail: From %q is not an address", cfg.From)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultSMTPTimeout
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tlsConf = cfg.TLSConfig.Clone()
	}
	if tlsConf.ServerName == "" {
		tlsConf.ServerName = host
	}
	opts := []gomail.Option{gomail.WithTimeout(timeout), gomail.WithTLSConfig(tlsConf)}
	var port int
	switch strings.ToLower(u.Scheme) {
	case "smtp":
		port = 25
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case "smtp+starttls":
		port = 587
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "smtps":
		port = 465
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("mail: SMTP URL scheme %q: use smtp, smtp+starttls or smtps", u.Scheme)
	}
	if p := u.Port(); p != "" {
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("mail: SMTP URL %q: bad port", redact(u))
		}
	}
	opts = append(opts, gomail.WithPort(port))
	if u.User != nil && u.User.Username() != "" {
		pass, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	clock := cfg.Clock
	if clock == nil {
		clock = portal.SystemClock{}
	}
	return &SMTPSender{from: cfg.From, host: host, port: port, opts: opts, clock: clock, display: redact(u)}, nil
}

// redact prints a URL without its password.
func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	return c.String()
}

// String describes the server (no password), for a startup log line.
func (s *SMTPSender) String() string { return "smtp sender " + s.display }

// Build turns m into a go-mail message (exported for tests and previews).
func (s *SMTPSender) Build(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return nil, Permanent(fmt.Errorf("from: %w", err))
	}
	if err := msg.To(m.To); err != nil {
		return nil, Permanent(fmt.Errorf("recipient address: %w", err))
	}
	msg.Subject(m.Subject)
	id := strings.TrimSuffix(strings.TrimPrefix(m.MessageID, "<"), ">")
	if id == "" || strings.ContainsAny(id, "<> \r\n") {
		return nil, Permanent(fmt.Errorf("message %d has no usable Message-ID", m.ID))
	}
	msg.SetMessageIDWithValue(id)
	msg.SetDateWithValue(s.clock.Now())
	// RFC 3834: machine-generated, so auto-responders stay quiet.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetUserAgent("certdesk")
	if m.Lang != "" {
		msg.SetGenHeader(gomail.Header("Content-Language"), m.Lang)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	for _, a := range m.Attachments {
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		if err := msg.AttachReader(a.Filename, bytes.NewReader(a.Data), gomail.WithFileContentType(gomail.ContentType(ct))); err != nil {
			return nil, fmt.Errorf("attachment %q: %w", a.Filename, err)
		}
	}
	return msg, nil
}

// Send delivers m over one new SMTP connection. A 5xx answer to RCPT or
// DATA (unknown mailbox, message refused) is Permanent; every other error
// (connection refused, timeouts, 4xx, a rejected sender or AUTH failure,
// which are configuration problems an operator can fix) is retryable.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	msg, err := s.Build(m)
	if err != nil {
		return err
	}
	client, err := gomail.NewClient(s.host, s.opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		var se *gomail.SendError
		if errors.As(err, &se) && se.ErrorCode() >= 500 && se.ErrorCode() < 600 {
			switch se.Reason {
			case gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
				return Permanent(err)
			}
		}
		return err
	}
	return nil
}

// DevSender is used when no SMTP URL is configured. Send delivers nowhere
// and succeeds, so the row becomes 'sent'; the message stays readable in
// the outbox, which the dev mailbox page shows (store.DB.ListOutbox,
// GetOutbox). It logs the id and kind at debug level, never the body.
type DevSender struct {
	Logger *slog.Logger
}

// Send succeeds without sending.
func (d DevSender) Send(ctx context.Context, m Message) error {
	if d.Logger != nil {
		d.Logger.DebugContext(ctx, "mail kept in dev mailbox", "outbox_id", m.ID, "kind", m.Kind)
	}
	return nil
}

// String names the sender for a startup log line.
func (DevSender) String() string { return "dev mailbox (no SMTP URL set: mail is not sent)" }

// NewSender returns a DevSender when smtpURL is empty, else an SMTPSender
// for it with the default timeout.
func NewSender(smtpURL, from string) (Sender, error) {
	if strings.TrimSpace(smtpURL) == "" {
		return DevSender{}, nil
	}
	return NewSMTPSender(SMTPConfig{URL: smtpURL, From: from})
}
