package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"regexp"
	"sync"
	"time"

	"certdesk/internal/portal"
)

// Defaults of the Worker's zero fields.
const (
	DefaultLease       = 5 * time.Minute
	DefaultBatch       = 10
	DefaultMaxAttempts = 10
	DefaultInterval    = 15 * time.Second
	DefaultSendTimeout = time.Minute
)

// DefaultBackoff is the wait after the n-th failed attempt (n >= 1):
// 30 s, 1 min, 2 min, 4 min ... doubling, capped at 1 h. With
// DefaultMaxAttempts (10) a message is retried for about 3 h 4 min
// (30s+1m+2m+4m+8m+16m+32m+1h+1h) before it is marked failed.
func DefaultBackoff(n int) time.Duration {
	const base, ceiling = 30 * time.Second, time.Hour
	if n < 1 {
		n = 1
	}
	d := base
	for i := 1; i < n; i++ {
		d *= 2
		if d >= ceiling {
			return ceiling
		}
	}
	return d
}

// Worker delivers due outbox messages. Zero fields take the defaults above;
// Outbox and Sender are required. Run one or more Workers (in one or in
// several processes): the outbox lease keeps them from sending a row twice.
type Worker struct {
	Outbox      Outbox
	Sender      Sender
	Clock       portal.Clock // portal.SystemClock if nil
	Logger      *slog.Logger // slog.Default() if nil
	Lease       time.Duration
	Batch       int                       // rows claimed at a time
	MaxAttempts int                       // failed attempts before 'failed'
	Backoff     func(n int) time.Duration // wait after the n-th failed attempt
	Interval    time.Duration             // poll period of Run
	SendTimeout time.Duration             // per message; capped at Lease/2

	once sync.Once
	wake chan struct{}
}

func (w *Worker) init() {
	w.once.Do(func() { w.wake = make(chan struct{}, 1) })
}

func (w *Worker) clock() portal.Clock {
	if w.Clock == nil {
		return portal.SystemClock{}
	}
	return w.Clock
}

func (w *Worker) logger() *slog.Logger {
	if w.Logger == nil {
		return slog.Default()
	}
	return w.Logger
}

func (w *Worker) lease() time.Duration {
	if w.Lease <= 0 {
		return DefaultLease
	}
	return w.Lease
}

func (w *Worker) batch() int {
	if w.Batch <= 0 {
		return DefaultBatch
	}
	return w.Batch
}

func (w *Worker) maxAttempts() int {
	if w.MaxAttempts <= 0 {
		return DefaultMaxAttempts
	}
	return w.MaxAttempts
}

func (w *Worker) backoff(n int) time.Duration {
	if w.Backoff == nil {
		return DefaultBackoff(n)
	}
	return w.Backoff(n)
}

// sendTimeout is below half the lease, so a live worker has finished or
// abandoned a send long before its claim can pass to another worker.
func (w *Worker) sendTimeout() time.Duration {
	d := w.SendTimeout
	if d <= 0 {
		d = DefaultSendTimeout
	}
	if half := w.lease() / 2; d > half {
		d = half
	}
	return d
}

// Wake asks a running Run loop to look at the outbox now instead of at the
// next tick. It never blocks; call it after committing a transaction that
// enqueued mail. Safe on a Worker that is not running.
func (w *Worker) Wake() {
	w.init()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// RunOnce claims one batch of due messages and tries each once. sent counts
// deliveries, failed counts failed attempts (retry scheduled or final). err
// reports a failure to claim or to record an outcome; the rows concerned
// stay leased and are retried after the lease.
func (w *Worker) RunOnce(ctx context.Context) (sent, failed int, err error) {
	sent, failed, _, err = w.runBatch(ctx)
	return sent, failed, err
}

func (w *Worker) runBatch(ctx context.Context) (sent, failed, claimed int, err error) {
	if w.Outbox == nil || w.Sender == nil {
		return 0, 0, 0, errors.New("mail: worker needs an Outbox and a Sender")
	}
	msgs, err := w.Outbox.ClaimDue(ctx, w.clock().Now(), w.lease(), w.batch())
	if err != nil {
		return 0, 0, 0, fmt.Errorf("mail: claim: %w", err)
	}
	var errs []error
	for i, m := range msgs {
		if ctx.Err() != nil {
			// Stopping: hand the rest back at once instead of waiting for the lease.
			for _, rest := range msgs[i:] {
				errs = append(errs, w.record(ctx, rest.ID, "not attempted: worker stopping", w.clock().Now(), false))
			}
			break
		}
		ok, rerr := w.deliver(ctx, m)
		if ok {
			sent++
		} else {
			failed++
		}
		errs = append(errs, rerr)
	}
	return sent, failed, len(msgs), errors.Join(errs...)
}

// record writes an outcome even when ctx is being cancelled (shutdown), so
// an attempt that happened is not forgotten.
func (w *Worker) record(ctx context.Context, id int64, errText string, next time.Time, final bool) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return w.Outbox.MarkFailed(rctx, id, errText, next, final)
}

// deliver tries one message and records the outcome. ok is true when the
// server accepted it.
func (w *Worker) deliver(ctx context.Context, m Message) (ok bool, err error) {
	log := w.logger().With("outbox_id", m.ID, "kind", m.Kind, "attempt", m.Attempts)
	if m.Attempts > w.maxAttempts() {
		// Only reachable through lease expiry (a worker died mid-send each time).
		msg := fmt.Sprintf("gave up after %d attempts", m.Attempts-1)
		log.ErrorContext(ctx, "mail failed for good", "error", msg)
		return false, w.record(ctx, m.ID, msg, w.clock().Now(), true)
	}

	sctx, cancel := context.WithTimeout(ctx, w.sendTimeout())
	sendErr := w.Sender.Send(sctx, m)
	cancel()
	now := w.clock().Now()

	if sendErr == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := w.Outbox.MarkSent(rctx, m.ID, now); err != nil {
			// The server has the message but the row still says 'sending':
			// after the lease it is sent again with the same Message-ID.
			log.ErrorContext(ctx, "mail delivered but not recorded; will be resent after the lease", "error", err.Error())
			return true, fmt.Errorf("mail: mark %d sent: %w", m.ID, err)
		}
		log.InfoContext(ctx, "mail sent")
		return true, nil
	}

	final := IsPermanent(sendErr) || m.Attempts >= w.maxAttempts()
	next := now.Add(w.backoff(m.Attempts))
	logErr := scrubAddress(sendErr.Error(), m.To)
	if final {
		next = now
		log.ErrorContext(ctx, "mail failed for good", "error", logErr, "permanent", IsPermanent(sendErr))
	} else {
		log.WarnContext(ctx, "mail attempt failed; will retry", "error", logErr, "next_attempt_at", next)
	}
	if err := w.record(ctx, m.ID, sendErr.Error(), next, final); err != nil {
		return false, fmt.Errorf("mail: mark %d failed: %w", m.ID, err)
	}
	return false, nil
}

// Run delivers due mail until ctx ends: at start, on every Interval tick
// and on every Wake, it claims batches until one comes back short.
func (w *Worker) Run(ctx context.Context) {
	w.init()
	interval := w.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			_, _, claimed, err := w.runBatch(ctx)
			if err != nil && ctx.Err() == nil {
				w.logger().ErrorContext(ctx, "mail worker", "error", err.Error())
			}
			if err != nil || claimed < w.batch() {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// scrubAddress removes the recipient's address from an error text before it
// is logged (SMTP errors quote it); the outbox row keeps the full text.
func scrubAddress(text, to string) string {
	addr := to
	if a, err := netmail.ParseAddress(to); err == nil {
		addr = a.Address
	}
	if addr == "" {
		return text
	}
	return regexp.MustCompile(`(?i)`+regexp.QuoteMeta(addr)).ReplaceAllString(text, "[recipient]")
}
