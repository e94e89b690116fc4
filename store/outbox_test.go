package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"certdesk/internal/portal"
)

var outboxT0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func openOutboxDB(t *testing.T) (*DB, *portal.FixedClock, string) {
	t.Helper()
	clock := portal.NewFixedClock(outboxT0)
	path := filepath.Join(t.TempDir(), "outbox.db")
	db, err := Open(context.Background(), path, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, clock, path
}

func outboxSample(to string) portal.Email {
	return portal.Email{
		To: to, Subject: "Your certificate", Text: "plain body", HTML: "<p>html body</p>", Lang: "nl", Kind: "cert_issued",
		Attachments: []portal.Attachment{
			{Filename: "cert.pem", ContentType: "application/x-pem-file", Data: []byte("-----BEGIN CERTIFICATE-----\n")},
			{Filename: "chain.p7b", ContentType: "application/pkcs7-mime", Data: []byte{0x30, 0x82, 0x00, 0x01}},
		},
	}
}

func outboxCount(t *testing.T, db *DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEnqueueFollowsTheCallersTransaction(t *testing.T) {
	db, _, _ := openOutboxDB(t)
	ctx := context.Background()

	boom := errors.New("order insert failed")
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := db.EnqueueEmail(ctx, tx, outboxSample("a@example.com")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Tx error = %v", err)
	}
	if n := outboxCount(t, db, "outbox"); n != 0 {
		t.Fatalf("rolled-back transaction left %d outbox rows", n)
	}
	if n := outboxCount(t, db, "outbox_attachments"); n != 0 {
		t.Fatalf("rolled-back transaction left %d attachments", n)
	}

	var id int64
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = db.EnqueueEmail(ctx, tx, outboxSample("a@example.com"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := db.GetOutbox(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.To != "a@example.com" || m.Subject != "Your certificate" || m.Text != "plain body" || m.HTML != "<p>html body</p>" ||
		m.Lang != "nl" || m.Kind != "cert_issued" || m.Status != OutboxPending || m.Attempts != 0 {
		t.Fatalf("stored row = %+v", m)
	}
	if !m.CreatedAt.Equal(outboxT0) || !m.NextAttemptAt.Equal(outboxT0) || !m.SentAt.IsZero() {
		t.Fatalf("times: created %v next %v sent %v", m.CreatedAt, m.NextAttemptAt, m.SentAt)
	}
	if !regexp.MustCompile(`^<[a-z2-7]{32}@certdesk\.local>$`).MatchString(m.MessageID) {
		t.Fatalf("Message-ID %q", m.MessageID)
	}
	if len(m.Attachments) != 2 || m.Attachments[0].Filename != "cert.pem" || m.Attachments[1].ContentType != "application/pkcs7-mime" ||
		!bytes.Equal(m.Attachments[1].Data, []byte{0x30, 0x82, 0x00, 0x01}) {
		t.Fatalf("attachments = %+v", m.Attachments)
	}

	id2, err := db.Enqueue(ctx, portal.Email{To: "b@example.com", Subject: "s", Text: "t"})
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := db.GetOutbox(ctx, id2)
	if m2.MessageID == m.MessageID || m2.Lang != "en" {
		t.Fatalf("second row: %+v", m2)
	}
}

func TestEnqueueRefusesUndeliverable(t *testing.T) {
	db, _, _ := openOutboxDB(t)
	ctx := context.Background()
	bad := []portal.Email{
		{To: "", Subject: "s", Text: "t"},
		{To: "not an address", Subject: "s", Text: "t"},
		{To: "a@example.com\r\nBcc: x@evil.example", Subject: "s", Text: "t"},
		{To: "a@example.com", Subject: "hi\r\nBcc: x@evil.example", Text: "t"},
		{To: "a@example.com", Subject: "s", Text: ""},
		{To: "a@example.com", Subject: "s", Text: "t", Attachments: []portal.Attachment{{Filename: "../x", Data: []byte("x")}}},
	}
	for i, e := range bad {
		if _, err := db.Enqueue(ctx, e); portal.ErrorCode(err) != portal.EInvalid {
			t.Errorf("case %d: err = %v, want invalid", i, err)
		}
	}
	if n := outboxCount(t, db, "outbox"); n != 0 {
		t.Fatalf("%d rows stored from invalid emails", n)
	}
}

// Two processes (two *DB handles on one file), each with two goroutines,
// claim concurrently: every row is claimed exactly once.
func TestClaimDueConcurrentNeverSharesARow(t *testing.T) {
	db1, clock, path := openOutboxDB(t)
	ctx := context.Background()
	db2, err := Open(ctx, path, clock)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()

	const total = 120
	for i := 0; i < total; i++ {
		if _, err := db1.Enqueue(ctx, portal.Email{To: fmt.Sprintf("r%d@example.com", i), Subject: "s", Text: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var bad []string
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		db := db1
		if g%2 == 1 {
			db = db2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; ; round++ {
				if round > total { // bounded: a broken lease must fail the test, not hang it
					errs <- fmt.Errorf("still claiming after %d rounds", round)
					return
				}
				ms, err := db.ClaimDue(ctx, outboxT0, 5*time.Minute, 7)
				if err != nil {
					errs <- err
					return
				}
				if len(ms) == 0 {
					return
				}
				mu.Lock()
				for _, m := range ms {
					seen[m.ID]++
					if m.Status != OutboxSending || m.Attempts != 1 {
						bad = append(bad, fmt.Sprintf("row %d: status %s attempts %d", m.ID, m.Status, m.Attempts))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatalf("claimed rows in the wrong state: %v", bad[:min(len(bad), 5)])
	}
	if len(seen) != total {
		t.Fatalf("claimed %d distinct rows, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("row %d claimed %d times", id, n)
		}
	}
}

func TestLeaseExpiryMakesSendingRowClaimableAgain(t *testing.T) {
	db, clock, _ := openOutboxDB(t)
	ctx := context.Background()
	id, err := db.Enqueue(ctx, outboxSample("a@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	lease := 5 * time.Minute
	first, err := db.ClaimDue(ctx, clock.Now(), lease, 10)
	if err != nil || len(first) != 1 || first[0].ID != id || len(first[0].Attachments) != 2 || first[0].Attachments[0].Data == nil {
		t.Fatalf("first claim = %+v, %v", first, err)
	}
	// The worker "crashes": nothing is marked. Within the lease nobody else gets it.
	clock.Advance(lease - time.Second)
	if ms, _ := db.ClaimDue(ctx, clock.Now(), lease, 10); len(ms) != 0 {
		t.Fatalf("row claimed again inside its lease: %+v", ms)
	}
	clock.Advance(time.Second)
	again, err := db.ClaimDue(ctx, clock.Now(), lease, 10)
	if err != nil || len(again) != 1 {
		t.Fatalf("after lease: %+v, %v", again, err)
	}
	if again[0].Attempts != 2 || again[0].MessageID != first[0].MessageID {
		t.Fatalf("reclaimed: attempts %d message-id %q (first %q)", again[0].Attempts, again[0].MessageID, first[0].MessageID)
	}
}

func TestMarkFailedSentAndRequeue(t *testing.T) {
	db, clock, _ := openOutboxDB(t)
	ctx := context.Background()
	id, _ := db.Enqueue(ctx, outboxSample("a@example.com"))
	if ms, _ := db.ClaimDue(ctx, clock.Now(), time.Minute, 10); len(ms) != 1 {
		t.Fatal("not claimed")
	}
	next := clock.Now().Add(30 * time.Second)
	if err := db.MarkFailed(ctx, id, "451 4.3.0 try later", next, false); err != nil {
		t.Fatal(err)
	}
	m, _ := db.GetOutbox(ctx, id)
	if m.Status != OutboxPending || !m.NextAttemptAt.Equal(next) || m.LastError != "451 4.3.0 try later" || m.Attempts != 1 {
		t.Fatalf("after retryable failure: %+v", m)
	}
	clock.Advance(29 * time.Second)
	if ms, _ := db.ClaimDue(ctx, clock.Now(), time.Minute, 10); len(ms) != 0 {
		t.Fatal("claimed before next_attempt_at")
	}
	clock.Advance(time.Second)
	if ms, _ := db.ClaimDue(ctx, clock.Now(), time.Minute, 10); len(ms) != 1 || ms[0].Attempts != 2 {
		t.Fatalf("not claimed at next_attempt_at: %+v", ms)
	}
	if err := db.MarkFailed(ctx, id, "550 no such user", clock.Now(), true); err != nil {
		t.Fatal(err)
	}
	clock.Advance(24 * time.Hour)
	if ms, _ := db.ClaimDue(ctx, clock.Now(), time.Minute, 10); len(ms) != 0 {
		t.Fatal("final failure claimed again")
	}
	if m, _ := db.GetOutbox(ctx, id); m.Status != OutboxFailed {
		t.Fatalf("status %s", m.Status)
	}
	if err := db.RequeueOutbox(ctx, id, clock.Now()); err != nil {
		t.Fatal(err)
	}
	ms, _ := db.ClaimDue(ctx, clock.Now(), time.Minute, 10)
	if len(ms) != 1 || ms[0].Attempts != 1 {
		t.Fatalf("requeued row: %+v", ms)
	}
	sentAt := clock.Now()
	if err := db.MarkSent(ctx, id, sentAt); err != nil {
		t.Fatal(err)
	}
	// A late failure report from a worker whose lease had run out does not undo the delivery.
	if err := db.MarkFailed(ctx, id, "timeout", sentAt.Add(time.Minute), false); err != nil {
		t.Fatal(err)
	}
	m, _ = db.GetOutbox(ctx, id)
	if m.Status != OutboxSent || !m.SentAt.Equal(sentAt) {
		t.Fatalf("after sent: %+v", m)
	}
	clock.Advance(time.Hour)
	if ms, _ := db.ClaimDue(ctx, clock.Now(), time.Minute, 10); len(ms) != 0 {
		t.Fatal("sent row claimed again")
	}
	if err := db.RequeueOutbox(ctx, id, clock.Now()); portal.ErrorCode(err) != portal.EConflict {
		t.Fatalf("requeue of a sent row: %v", err)
	}
	if err := db.MarkSent(ctx, 9999, clock.Now()); portal.ErrorCode(err) != portal.ENotFound {
		t.Fatalf("MarkSent unknown: %v", err)
	}
	if err := db.MarkFailed(ctx, 9999, "x", clock.Now(), false); portal.ErrorCode(err) != portal.ENotFound {
		t.Fatalf("MarkFailed unknown: %v", err)
	}
}

func TestListAndGetOutbox(t *testing.T) {
	db, clock, _ := openOutboxDB(t)
	ctx := context.Background()
	var ids []int64
	for i := 0; i < 3; i++ {
		id, err := db.Enqueue(ctx, outboxSample(fmt.Sprintf("u%d@example.com", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		clock.Advance(time.Second)
	}
	list, err := db.ListOutbox(ctx, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != ids[2] || list[1].ID != ids[1] {
		t.Fatalf("page 1 = %+v", list)
	}
	if len(list[0].Attachments) != 2 || list[0].Attachments[0].Filename != "cert.pem" || list[0].Attachments[0].Data != nil {
		t.Fatalf("list attachments = %+v", list[0].Attachments)
	}
	list, _ = db.ListOutbox(ctx, 2, 2)
	if len(list) != 1 || list[0].ID != ids[0] {
		t.Fatalf("page 2 = %+v", list)
	}
	if n, _ := db.CountOutbox(ctx); n != 3 {
		t.Fatalf("count %d", n)
	}
	if _, err := db.GetOutbox(ctx, 424242); portal.ErrorCode(err) != portal.ENotFound {
		t.Fatalf("GetOutbox unknown: %v", err)
	}
	m, err := db.LatestOutboxTo(ctx, "U1@example.com", "cert_issued")
	if err != nil || m.ID != ids[1] || len(m.Attachments[0].Data) == 0 {
		t.Fatalf("LatestOutboxTo = %+v, %v", m, err)
	}
	if _, err := db.LatestOutboxTo(ctx, "u1@example.com", "other_kind"); portal.ErrorCode(err) != portal.ENotFound {
		t.Fatalf("LatestOutboxTo other kind: %v", err)
	}
}

// In production a delivered message keeps its envelope but not its bodies
// or attachments (they hold single-use links); a message still to be sent
// keeps everything, and the start-up sweep scrubs what was delivered
// before. Without ScrubSentMail (the dev mailbox) nothing is removed.
func TestSentMailScrubbed(t *testing.T) {
	db, clock, _ := openOutboxDB(t)
	ctx := context.Background()
	kept, _ := db.Enqueue(ctx, outboxSample("dev@example.com"))
	db.ClaimDue(ctx, clock.Now(), time.Minute, 10)
	if err := db.MarkSent(ctx, kept, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if m, _ := db.GetOutbox(ctx, kept); m.Text == "" || len(m.Attachments) != 2 {
		t.Fatalf("without ScrubSentMail the message lost its content: %+v", m)
	}

	db.ScrubSentMail = true
	sent, _ := db.Enqueue(ctx, outboxSample("a@example.com"))
	pending, _ := db.Enqueue(ctx, outboxSample("b@example.com"))
	db.ClaimDue(ctx, clock.Now(), time.Minute, 10)
	if err := db.MarkSent(ctx, sent, clock.Now()); err != nil {
		t.Fatal(err)
	}
	m, err := db.GetOutbox(ctx, sent)
	if err != nil || m.Status != OutboxSent || m.To != "a@example.com" || m.Subject != "Your certificate" || m.MessageID == "" {
		t.Fatalf("envelope of the delivered message: %+v %v", m, err)
	}
	if m.Text != "" || m.HTML != "" || len(m.Attachments) != 0 {
		t.Fatalf("delivered message still holds its content: text %q html %q %d attachments", m.Text, m.HTML, len(m.Attachments))
	}
	if p, _ := db.GetOutbox(ctx, pending); p.Text == "" || len(p.Attachments) != 2 {
		t.Fatalf("a message not yet delivered lost its content: %+v", p)
	}
	if n, err := db.ScrubSentOutbox(ctx); err != nil || n != 1 {
		t.Fatalf("sweep scrubbed %d (%v), want the 1 delivered before", n, err)
	}
	if m, _ := db.GetOutbox(ctx, kept); m.Text != "" || len(m.Attachments) != 0 {
		t.Fatalf("sweep left the earlier delivery's content: %+v", m)
	}
	if p, _ := db.GetOutbox(ctx, pending); p.Text == "" || len(p.Attachments) != 2 {
		t.Fatalf("sweep touched a pending message: %+v", p)
	}
}
