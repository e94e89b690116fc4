package mail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"certdesk/internal/mail"
)

func testMsg() mail.Message {
	return mail.Message{ID: 7, To: "h@example.com", Subject: "tls", Text: "t", Kind: "k", MessageID: "<abc@certdesk.local>"}
}

func TestSMTPURLs(t *testing.T) {
	bad := []string{"", "http://localhost:25", "smtp://", "smtp://host:0", "smtp://host:99999",
		"smtp://host/path", "smtp://host?x=1", "://nope"}
	for _, u := range bad {
		if _, err := mail.NewSMTPSender(mail.SMTPConfig{URL: u, From: "a@b.c"}); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
	if _, err := mail.NewSMTPSender(mail.SMTPConfig{URL: "smtp://localhost", From: "not an address"}); err == nil {
		t.Error("bad From accepted")
	}
	s, err := mail.NewSMTPSender(mail.SMTPConfig{URL: "smtps://user:s3cret@mail.example.com", From: "a@b.c"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.String(), "s3cret") || !strings.Contains(s.String(), "smtps://user@mail.example.com") {
		t.Fatalf("String() = %q", s.String())
	}
	_, err = mail.NewSMTPSender(mail.SMTPConfig{URL: "smtp://user:s3cret@host:bad", From: "a@b.c"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad port error %v", err)
	}
}

// smtp+starttls:// refuses a server that offers no STARTTLS (no silent
// downgrade); smtp:// uses STARTTLS when offered and then authenticates.
func TestSTARTTLSAndAuth(t *testing.T) {
	plain := startSMTP(t)
	s, err := mail.NewSMTPSender(mail.SMTPConfig{URL: plain.url("smtp+starttls"), From: "a@b.c", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testMsg()); err == nil || mail.IsPermanent(err) {
		t.Fatalf("mandatory STARTTLS against a plain server: %v", err)
	}
	if len(plain.received()) != 0 {
		t.Fatal("message sent without TLS")
	}

	serverTLS, clientTLS := selfSigned(t)
	tlsSrv := &smtpServer{t: t, tls: serverTLS, user: "mailer", pass: "p@ss word"}
	tlsSrv.start("127.0.0.1:0")
	for _, scheme := range []string{"smtp", "smtp+starttls"} {
		url := scheme + "://mailer:p%40ss%20word@" + tlsSrv.addr
		s, err := mail.NewSMTPSender(mail.SMTPConfig{URL: url, From: "a@b.c", Timeout: 5 * time.Second, TLSConfig: clientTLS})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), testMsg()); err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
	}
	if n := len(tlsSrv.received()); n != 2 {
		t.Fatalf("STARTTLS server received %d", n)
	}
	// Wrong password: not delivered, and retryable (an operator can fix it).
	s, _ = mail.NewSMTPSender(mail.SMTPConfig{URL: "smtp+starttls://mailer:wrong@" + tlsSrv.addr, From: "a@b.c", Timeout: 5 * time.Second, TLSConfig: clientTLS})
	if err := s.Send(context.Background(), testMsg()); err == nil || mail.IsPermanent(err) {
		t.Fatalf("wrong password: %v", err)
	}
	// Without our CA the self-signed certificate is refused.
	s, _ = mail.NewSMTPSender(mail.SMTPConfig{URL: "smtp+starttls://" + tlsSrv.addr, From: "a@b.c", Timeout: 5 * time.Second})
	if err := s.Send(context.Background(), testMsg()); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}

func TestImplicitTLS(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	srv := &smtpServer{t: t, tls: serverTLS, implicit: true}
	srv.start("127.0.0.1:0")
	s, err := mail.NewSMTPSender(mail.SMTPConfig{URL: srv.url("smtps"), From: "a@b.c", Timeout: 5 * time.Second, TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testMsg()); err != nil {
		t.Fatal(err)
	}
	got := srv.received()
	if len(got) != 1 || parseMessage(t, got[0].Data).Header.Get("Message-Id") != "<abc@certdesk.local>" {
		t.Fatalf("received %d", len(got))
	}
}
