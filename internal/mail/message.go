package mail

import (
	"context"
	"errors"
	"time"

	"certdesk/internal/portal"
)

// Message is one outbox row as the worker and the senders see it. Its
// fields are, in name, order and type, those of store.OutboxMessage, so
// mail.Message(row) converts one into the other (see NewOutbox).
type Message struct {
	ID            int64
	CreatedAt     time.Time
	To            string
	Subject       string
	Text          string
	HTML          string
	Lang          string
	Kind          string
	Status        string
	Attempts      int // attempts started, this one included
	NextAttemptAt time.Time
	LastError     string
	SentAt        time.Time
	MessageID     string // "<token@certdesk.local>", the same on every retry
	Attachments   []portal.Attachment
}

// Sender delivers one message. An error means "not delivered, try again"
// unless it is marked Permanent.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, m Message) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, m Message) error { return f(ctx, m) }

// Outbox is what the Worker needs from the outbox table (store.DB offers it
// through NewOutbox).
type Outbox interface {
	ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Message, error)
	MarkSent(ctx context.Context, id int64, now time.Time) error
	MarkFailed(ctx context.Context, id int64, errText string, next time.Time, final bool) error
}

// RowStore is an outbox whose ClaimDue returns its own row type R
// (store.DB, with R = store.OutboxMessage).
type RowStore[R any] interface {
	ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]R, error)
	MarkSent(ctx context.Context, id int64, now time.Time) error
	MarkFailed(ctx context.Context, id int64, errText string, next time.Time, final bool) error
}

// NewOutbox adapts a RowStore to Outbox with conv turning a row into a
// Message. With store.DB:
//
//	mail.NewOutbox(db, func(r store.OutboxMessage) mail.Message { return mail.Message(r) })
func NewOutbox[R any](s RowStore[R], conv func(R) Message) Outbox {
	return rowOutbox[R]{s: s, conv: conv}
}

type rowOutbox[R any] struct {
	s    RowStore[R]
	conv func(R) Message
}

func (o rowOutbox[R]) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Message, error) {
	rows, err := o.s.ClaimDue(ctx, now, lease, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Message, len(rows))
	for i, r := range rows {
		out[i] = o.conv(r)
	}
	return out, nil
}

func (o rowOutbox[R]) MarkSent(ctx context.Context, id int64, now time.Time) error {
	return o.s.MarkSent(ctx, id, now)
}

func (o rowOutbox[R]) MarkFailed(ctx context.Context, id int64, errText string, next time.Time, final bool) error {
	return o.s.MarkFailed(ctx, id, errText, next, final)
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so the Worker marks the message 'failed' at once
// instead of retrying (e.g. the server answered 550 "no such user").
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err (or an error it wraps) was marked
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
