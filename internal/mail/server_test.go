package mail_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message as the test SMTP server got it.
type received struct {
	From string
	To   []string
	Data []byte
}

// smtpServer is a real SMTP server (emersion/go-smtp) on 127.0.0.1 that
// collects what it accepts. Reject makes it answer with an SMTP error.
type smtpServer struct {
	t    *testing.T
	addr string
	tls  *tls.Config // non-nil: STARTTLS offered (or implicit TLS if implicit)

	implicit bool
	user     string // non-empty: AUTH PLAIN required with user/pass
	pass     string

	mu         sync.Mutex
	msgs       []received
	rejectRcpt *smtp.SMTPError
	rejectData *smtp.SMTPError
	srv        *smtp.Server
}

func startSMTP(t *testing.T) *smtpServer {
	s := &smtpServer{t: t}
	s.start("127.0.0.1:0")
	return s
}

func (s *smtpServer) start(addr string) {
	s.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // re-listening on a just-closed port may need a moment
		ln, err = net.Listen("tcp", addr)
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	if s.implicit {
		ln = tls.NewListener(ln, s.tls)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = discardLogger{}
	if !s.implicit {
		srv.TLSConfig = s.tls
	}
	s.mu.Lock()
	s.srv = srv
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	go srv.Serve(ln)
	s.t.Cleanup(func() { srv.Close() })
}

// stop closes the listener and every connection: the port refuses.
func (s *smtpServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	srv.Close()
}

// restart listens again on the same port.
func (s *smtpServer) restart() { s.start(s.addr) }

func (s *smtpServer) url(scheme string) string { return scheme + "://" + s.addr }

func (s *smtpServer) setReject(rcpt, data *smtp.SMTPError) {
	s.mu.Lock()
	s.rejectRcpt, s.rejectData = rcpt, data
	s.mu.Unlock()
}

func (s *smtpServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...interface{}) {}
func (discardLogger) Println(...interface{})        {}

type session struct {
	s      *smtpServer
	authed bool
	from   string
	to     []string
}

func (x *session) AuthMechanisms() []string {
	if x.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != x.s.user || password != x.s.pass {
			return smtp.ErrAuthFailed
		}
		x.authed = true
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.user != "" && !x.authed {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	rej := x.s.rejectRcpt
	x.s.mu.Unlock()
	if rej != nil {
		return rej
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if x.s.rejectData != nil {
		return x.s.rejectData
	}
	x.s.msgs = append(x.s.msgs, received{From: x.from, To: append([]string(nil), x.to...), Data: b})
	return nil
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

var (
	temp451 = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
	perm550 = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
)

// parsed is a received message taken apart.
type parsed struct {
	Header      mail.Header
	Subject     string
	Text, HTML  string
	Attachments map[string][]byte // filename -> data
	AttachTypes map[string]string // filename -> content type
}

func parseMessage(t *testing.T, data []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var dec mime.WordDecoder
	subj, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{Header: m.Header, Subject: subj, Attachments: map[string][]byte{}, AttachTypes: map[string]string{}}
	walkPart(t, &p, m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), "", m.Body)
	return p
}

func walkPart(t *testing.T, p *parsed, ctype, cte, disp string, body io.Reader) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		t.Fatalf("content type %q: %v", ctype, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			walkPart(t, p, part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"),
				part.Header.Get("Content-Disposition"), part)
		}
	}
	var r io.Reader = body
	switch strings.ToLower(cte) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, stripNewlines{body})
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if disp != "" {
		if d, dp, err := mime.ParseMediaType(disp); err == nil && d == "attachment" {
			p.Attachments[dp["filename"]] = b
			p.AttachTypes[dp["filename"]] = mt
			return
		}
	}
	switch mt {
	case "text/plain":
		p.Text = string(b)
	case "text/html":
		p.HTML = string(b)
	}
}

type stripNewlines struct{ r io.Reader }

func (s stripNewlines) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	j := 0
	for _, c := range b[:n] {
		if c != '\r' && c != '\n' {
			b[j] = c
			j++
		}
	}
	return j, err
}

// selfSigned returns a server TLS config for 127.0.0.1 and a client config
// that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}
