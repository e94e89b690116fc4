package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"certdesk/internal/mail"
	"certdesk/internal/portal"
	"certdesk/store"
)

var start = time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)

type env struct {
	db     *store.DB
	path   string
	clock  *portal.FixedClock
	outbox mail.Outbox
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := portal.NewFixedClock(start)
	path := filepath.Join(t.TempDir(), "mail.db")
	db, err := store.Open(context.Background(), path, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &env{db: db, path: path, clock: clock, outbox: adapt(db), logs: &syncBuffer{}}
}

// adapt is the wiring cmd/certdesk uses.
func adapt(db *store.DB) mail.Outbox {
	return mail.NewOutbox(db, func(r store.OutboxMessage) mail.Message { return mail.Message(r) })
}

func (e *env) worker(s mail.Sender) *mail.Worker {
	return &mail.Worker{
		Outbox: e.outbox, Sender: s, Clock: e.clock,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (e *env) enqueue(t *testing.T, m portal.Email) store.OutboxMessage {
	t.Helper()
	id, err := e.db.Enqueue(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return e.get(t, id)
}

func (e *env) get(t *testing.T, id int64) store.OutboxMessage {
	t.Helper()
	m, err := e.db.GetOutbox(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func smtpSender(t *testing.T, url string) *mail.SMTPSender {
	t.Helper()
	s, err := mail.NewSMTPSender(mail.SMTPConfig{URL: url, From: "certdesk <noreply@certdesk.test>", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const secretLink = "https://certdesk.test/keygen/s3cr3t-t0ken-value"

func TestWorkerDeliversOverSMTP(t *testing.T) {
	e := newEnv(t)
	srv := startSMTP(t)
	ctx := context.Background()

	rendered, err := mail.Render("nl", mail.KindTest, map[string]any{"URL": secretLink})
	if err != nil {
		t.Fatal(err)
	}
	rendered.To = "Alice@Example.com"
	pem := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	rendered.Attachments = []portal.Attachment{{Filename: "alice.pem", ContentType: "application/x-pem-file", Data: pem}}
	first := e.enqueue(t, rendered)
	second := e.enqueue(t, portal.Email{To: "bob@example.org", Subject: "Plain only", Text: "no html here", Kind: "plain"})

	w := e.worker(smtpSender(t, srv.url("smtp")))
	sent, failed, err := w.RunOnce(ctx)
	if err != nil || sent != 2 || failed != 0 {
		t.Fatalf("RunOnce = %d sent, %d failed, %v", sent, failed, err)
	}
	got := srv.received()
	if len(got) != 2 {
		t.Fatalf("server received %d messages, want 2", len(got))
	}
	byID := map[string]parsed{}
	for _, r := range got {
		p := parseMessage(t, r.Data)
		byID[p.Header.Get("Message-Id")] = p
		if r.From != "noreply@certdesk.test" || len(r.To) != 1 {
			t.Fatalf("envelope from %q to %v", r.From, r.To)
		}
	}

	p, ok := byID[first.MessageID]
	if !ok {
		t.Fatalf("no message with Message-ID %s; got %v", first.MessageID, keys(byID))
	}
	if p.Header.Get("To") != "<Alice@Example.com>" {
		t.Fatalf("To header %q", p.Header.Get("To"))
	}
	if p.Subject != "Testbericht van certdesk" {
		t.Fatalf("subject %q", p.Subject)
	}
	if !strings.Contains(p.Text, "Dit is een testbericht") || !strings.Contains(p.Text, secretLink) {
		t.Fatalf("text part:\n%s", p.Text)
	}
	if !strings.Contains(p.HTML, `<html lang="nl">`) || !strings.Contains(p.HTML, `href="`+secretLink+`"`) {
		t.Fatalf("html part:\n%s", p.HTML)
	}
	if !bytes.Equal(p.Attachments["alice.pem"], pem) || p.AttachTypes["alice.pem"] != "application/x-pem-file" {
		t.Fatalf("attachments %v types %v", p.Attachments, p.AttachTypes)
	}
	if p.Header.Get("Auto-Submitted") != "auto-generated" || p.Header.Get("From") != `"certdesk" <noreply@certdesk.test>` || p.Header.Get("X-Mailer") != "certdesk" {
		t.Fatalf("headers %v", p.Header)
	}

	p2, ok := byID[second.MessageID]
	if !ok || p2.Subject != "Plain only" || strings.TrimSpace(p2.Text) != "no html here" || p2.HTML != "" {
		t.Fatalf("second message %+v (found %v)", p2, ok)
	}

	for _, id := range []int64{first.ID, second.ID} {
		m := e.get(t, id)
		if m.Status != store.OutboxSent || !m.SentAt.Equal(start) || m.Attempts != 1 {
			t.Fatalf("row %d after delivery: status %s sent_at %v attempts %d", id, m.Status, m.SentAt, m.Attempts)
		}
	}
	// Nothing is due any more: a later run sends nothing again.
	e.clock.Advance(24 * time.Hour)
	if sent, _, _ := w.RunOnce(ctx); sent != 0 || len(srv.received()) != 2 {
		t.Fatalf("second run sent %d, server has %d", sent, len(srv.received()))
	}

	logs := e.logs.String()
	if !strings.Contains(logs, fmt.Sprintf("outbox_id=%d", first.ID)) || !strings.Contains(logs, "kind=test") {
		t.Fatalf("logs lack id/kind:\n%s", logs)
	}
	for _, secret := range []string{"s3cr3t-t0ken-value", "Dit is een testbericht", "Alice@Example.com", "MIIB"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q:\n%s", secret, logs)
		}
	}
}

func keys(m map[string]parsed) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestOutageRetriesWithBackoffThenDeliversOnce(t *testing.T) {
	e := newEnv(t)
	srv := startSMTP(t)
	ctx := context.Background()
	row := e.enqueue(t, portal.Email{To: "carol@example.com", Subject: "Link", Text: "body " + secretLink, Kind: "keygen"})
	w := e.worker(smtpSender(t, srv.url("smtp")))

	// 1. The server answers 451 to DATA.
	srv.setReject(nil, temp451)
	if sent, failed, err := w.RunOnce(ctx); sent != 0 || failed != 1 || err != nil {
		t.Fatalf("run 1: %d sent %d failed %v", sent, failed, err)
	}
	m := e.get(t, row.ID)
	if m.Status != store.OutboxPending || m.Attempts != 1 || !m.NextAttemptAt.Equal(start.Add(30*time.Second)) ||
		!strings.Contains(m.LastError, "451") {
		t.Fatalf("after 451: %+v", m)
	}
	// Not due before the backoff has passed.
	e.clock.Advance(29 * time.Second)
	if sent, failed, _ := w.RunOnce(ctx); sent+failed != 0 {
		t.Fatal("retried before next_attempt_at")
	}

	// 2. The server is down altogether (connection refused).
	srv.setReject(nil, nil)
	srv.stop()
	e.clock.Advance(time.Second)
	if sent, failed, err := w.RunOnce(ctx); sent != 0 || failed != 1 || err != nil {
		t.Fatalf("run 2: %d sent %d failed %v", sent, failed, err)
	}
	m = e.get(t, row.ID)
	if m.Status != store.OutboxPending || m.Attempts != 2 || !m.NextAttemptAt.Equal(e.clock.Now().Add(time.Minute)) {
		t.Fatalf("after outage: %+v", m)
	}

	// 3. The server is back: delivered exactly once, with the row's Message-ID.
	srv.restart()
	e.clock.Advance(time.Minute)
	if sent, failed, err := w.RunOnce(ctx); sent != 1 || failed != 0 || err != nil {
		t.Fatalf("run 3: %d sent %d failed %v", sent, failed, err)
	}
	e.clock.Advance(time.Hour)
	w.RunOnce(ctx)
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("server received %d copies, want 1", len(got))
	}
	if id := parseMessage(t, got[0].Data).Header.Get("Message-Id"); id != row.MessageID {
		t.Fatalf("Message-ID %q, row has %q", id, row.MessageID)
	}
	m = e.get(t, row.ID)
	if m.Status != store.OutboxSent || m.Attempts != 3 {
		t.Fatalf("final row: %+v", m)
	}
	if strings.Contains(e.logs.String(), "s3cr3t") {
		t.Fatal("a body reached the logs")
	}
}

func TestPermanentRejectionFailsAtOnce(t *testing.T) {
	e := newEnv(t)
	srv := startSMTP(t)
	ctx := context.Background()
	row := e.enqueue(t, portal.Email{To: "Nobody <NoBody@Example.com>", Subject: "s", Text: "t"})
	srv.setReject(perm550, nil)
	w := e.worker(smtpSender(t, srv.url("smtp")))
	if _, failed, err := w.RunOnce(ctx); failed != 1 || err != nil {
		t.Fatalf("failed %d err %v", failed, err)
	}
	m := e.get(t, row.ID)
	if m.Status != store.OutboxFailed || m.Attempts != 1 || !strings.Contains(m.LastError, "550") {
		t.Fatalf("after 550: %+v", m)
	}
	// The SMTP error quotes the address; the log line must not.
	if logs := e.logs.String(); !strings.Contains(logs, "550") || strings.Contains(strings.ToLower(logs), "nobody@example.com") {
		t.Fatalf("log of a rejection:\n%s", logs)
	}
	srv.setReject(nil, nil)
	e.clock.Advance(48 * time.Hour)
	if sent, failed, _ := w.RunOnce(ctx); sent+failed != 0 || len(srv.received()) != 0 {
		t.Fatal("a permanently rejected message was retried")
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	row := e.enqueue(t, portal.Email{To: "d@example.com", Subject: "s", Text: "t"})
	calls := 0
	w := e.worker(mail.SenderFunc(func(context.Context, mail.Message) error { calls++; return errors.New("dial tcp: connection refused") }))
	w.MaxAttempts = 4
	var waits []time.Duration
	for i := 0; i < 10; i++ {
		before := e.clock.Now()
		w.RunOnce(ctx)
		m := e.get(t, row.ID)
		if m.Status == store.OutboxFailed {
			break
		}
		waits = append(waits, m.NextAttemptAt.Sub(before))
		e.clock.Set(m.NextAttemptAt)
	}
	if calls != 4 {
		t.Fatalf("sender called %d times, want 4", calls)
	}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Fatalf("backoff %v, want %v", waits, want)
	}
	if m := e.get(t, row.ID); m.Status != store.OutboxFailed || m.Attempts != 4 {
		t.Fatalf("final: %+v", m)
	}
}

func TestDefaultBackoff(t *testing.T) {
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
		16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour, time.Hour}
	for i, w := range want {
		if got := mail.DefaultBackoff(i + 1); got != w {
			t.Errorf("DefaultBackoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := mail.DefaultBackoff(500); got != time.Hour {
		t.Errorf("DefaultBackoff(500) = %v", got)
	}
}

// failMarkSent is an outbox whose MarkSent fails once: the process "dies"
// after the server accepted the message and before the row says sent.
type failMarkSent struct {
	mail.Outbox
	mu    sync.Mutex
	fails int
}

func (f *failMarkSent) MarkSent(ctx context.Context, id int64, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return errors.New("database gone")
	}
	return f.Outbox.MarkSent(ctx, id, now)
}

func TestCrashBetweenAcceptAndMarkSentResendsWithSameMessageID(t *testing.T) {
	e := newEnv(t)
	srv := startSMTP(t)
	ctx := context.Background()
	row := e.enqueue(t, portal.Email{To: "e@example.com", Subject: "s", Text: "t"})
	w := e.worker(smtpSender(t, srv.url("smtp")))
	w.Outbox = &failMarkSent{Outbox: e.outbox, fails: 1}
	w.Lease = 2 * time.Minute

	if _, _, err := w.RunOnce(ctx); err == nil {
		t.Fatal("lost MarkSent not reported")
	}
	if m := e.get(t, row.ID); m.Status != store.OutboxSending {
		t.Fatalf("status %s, want sending (lease held)", m.Status)
	}
	e.clock.Advance(time.Minute) // inside the lease: nobody resends
	w.RunOnce(ctx)
	if n := len(srv.received()); n != 1 {
		t.Fatalf("%d copies inside the lease", n)
	}
	e.clock.Advance(time.Minute) // lease over
	if sent, _, err := w.RunOnce(ctx); sent != 1 || err != nil {
		t.Fatalf("resend: %d %v", sent, err)
	}
	got := srv.received()
	if len(got) != 2 {
		t.Fatalf("%d copies, want 2 (at-least-once)", len(got))
	}
	id1 := parseMessage(t, got[0].Data).Header.Get("Message-Id")
	id2 := parseMessage(t, got[1].Data).Header.Get("Message-Id")
	if id1 != row.MessageID || id2 != row.MessageID {
		t.Fatalf("Message-IDs %q %q, row %q: a duplicate must be recognisable", id1, id2, row.MessageID)
	}
	if m := e.get(t, row.ID); m.Status != store.OutboxSent || m.Attempts != 2 {
		t.Fatalf("final %+v", m)
	}
}

// Two workers in two "processes" (two store handles on one file) drain one
// outbox concurrently: every message reaches the server exactly once.
func TestTwoWorkersNeverSendARowTwice(t *testing.T) {
	e := newEnv(t)
	srv := startSMTP(t)
	ctx := context.Background()
	db2, err := store.Open(ctx, e.path, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	const n = 24
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		r := e.enqueue(t, portal.Email{To: fmt.Sprintf("u%d@example.com", i), Subject: "s", Text: "t"})
		want[r.MessageID] = true
	}
	w1 := e.worker(smtpSender(t, srv.url("smtp")))
	w2 := e.worker(smtpSender(t, srv.url("smtp")))
	w2.Outbox = adapt(db2)
	w1.Batch, w2.Batch = 3, 3
	var wg sync.WaitGroup
	var total [2]int
	for i, w := range []*mail.Worker{w1, w2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; ; round++ {
				if round > n {
					t.Errorf("worker %d still sending after %d rounds", i, round)
					return
				}
				sent, failed, err := w.RunOnce(ctx)
				if err != nil || failed != 0 {
					t.Errorf("worker %d: failed %d err %v", i, failed, err)
					return
				}
				if sent == 0 {
					return
				}
				total[i] += sent
			}
		}()
	}
	wg.Wait()
	got := srv.received()
	seen := map[string]int{}
	for _, r := range got {
		seen[parseMessage(t, r.Data).Header.Get("Message-Id")]++
	}
	if len(got) != n || len(seen) != n {
		t.Fatalf("server got %d messages, %d distinct; want %d", len(got), len(seen), n)
	}
	for id, c := range seen {
		if !want[id] || c != 1 {
			t.Fatalf("Message-ID %s seen %d times (known %v)", id, c, want[id])
		}
	}
	t.Logf("worker 1 sent %d, worker 2 sent %d", total[0], total[1])
}

func TestRunDeliversOnWakeAndStops(t *testing.T) {
	e := newEnv(t)
	srv := startSMTP(t)
	w := e.worker(smtpSender(t, srv.url("smtp")))
	w.Interval = time.Hour // only Wake can trigger delivery after the first pass
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()

	e.enqueue(t, portal.Email{To: "f@example.com", Subject: "woken", Text: "t"})
	w.Wake()
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.received()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(srv.received()) != 1 {
		t.Fatalf("Wake did not deliver (server has %d)", len(srv.received()))
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop on cancel")
	}
}

func TestDevSenderMarksSentAndKeepsTheMessageReadable(t *testing.T) {
	e := newEnv(t)
	s, err := mail.NewSender("", "certdesk <noreply@localhost>")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(mail.DevSender); !ok {
		t.Fatalf("NewSender(\"\") = %T, want DevSender", s)
	}
	row := e.enqueue(t, portal.Email{To: "g@example.com", Subject: "dev", Text: "see " + secretLink, HTML: "<p>x</p>"})
	if sent, _, err := e.worker(s).RunOnce(context.Background()); sent != 1 || err != nil {
		t.Fatalf("sent %d err %v", sent, err)
	}
	list, err := e.db.ListOutbox(context.Background(), 10, 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v %v", list, err)
	}
	if list[0].ID != row.ID || list[0].Status != store.OutboxSent || !strings.Contains(list[0].Text, secretLink) {
		t.Fatalf("dev mailbox row %+v", list[0])
	}
}
