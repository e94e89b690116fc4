package store

// The transactional outbox (migration 0002_outbox.sql).
//
// A message is inserted with EnqueueEmail in the SAME transaction as the
// change that causes it, so an email exists if and only if its cause was
// committed. The mail worker (internal/mail) claims due rows with ClaimDue,
// delivers them and records the outcome with MarkSent or MarkFailed.
//
// Row states:
//
//	pending --ClaimDue--> sending --MarkSent--> sent
//	                         |  \--MarkFailed(final=false)--> pending (next_attempt_at = backoff)
//	                         |   \-MarkFailed(final=true)---> failed
//	                         \--lease (claimed_until) runs out: claimable again by ClaimDue
//
// A claim is a lease: a row in 'sending' is invisible to other workers
// until claimed_until has passed. A worker that crashes mid-send therefore
// loses nothing: the row is claimed again after the lease and retried with
// the same Message-ID.

import (
	"context"
	"database/sql"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"time"

	"certdesk/internal/portal"
)

// Outbox statuses.
const (
	OutboxPending = "pending"
	OutboxSending = "sending"
	OutboxSent    = "sent"
	OutboxFailed  = "failed"
)

// MessageIDDomain is the right-hand side of every generated Message-ID.
const MessageIDDomain = "certdesk.local"

// maxErrorText bounds last_error so a chatty server cannot bloat the row.
const maxErrorText = 1000

// OutboxMessage is one outbox row. Its fields are, in name, order and type,
// those of mail.Message, so the wiring converts with mail.Message(row)
// (see mail.NewOutbox); keep the two in step.
type OutboxMessage struct {
	ID            int64
	CreatedAt     time.Time
	To            string
	Subject       string
	Text          string
	HTML          string
	Lang          string
	Kind          string
	Status        string // OutboxPending, OutboxSending, OutboxSent, OutboxFailed
	Attempts      int    // delivery attempts started (ClaimDue increments it)
	NextAttemptAt time.Time
	LastError     string
	SentAt        time.Time // zero until sent
	MessageID     string    // "<token@certdesk.local>", fixed for the row's life
	Attachments   []portal.Attachment
}

// NewMessageID returns a fresh Message-ID header value (with the angle
// brackets), 160 random bits from portal.NewToken.
func NewMessageID() string {
	return "<" + portal.NewToken() + "@" + MessageIDDomain + ">"
}

// validateEmail refuses what could never be delivered or could inject
// headers; it is checked at enqueue time so the error reaches the caller's
// transaction instead of failing ten times in the worker.
func validateEmail(e portal.Email) error {
	if strings.TrimSpace(e.To) == "" {
		return portal.FieldError("to", "", "The email has no recipient.")
	}
	if strings.ContainsAny(e.To, "\r\n") {
		return portal.FieldError("to", "", "The recipient address is not valid.")
	}
	if _, err := mail.ParseAddress(e.To); err != nil {
		return portal.FieldError("to", "", "The recipient address is not valid.")
	}
	if strings.TrimSpace(e.Subject) == "" || strings.ContainsAny(e.Subject, "\r\n") {
		return portal.FieldError("subject", "", "The email subject is empty or spans lines.")
	}
	if e.Text == "" {
		return portal.FieldError("text", "", "The email has no text body.")
	}
	for _, a := range e.Attachments {
		if a.Filename == "" || strings.ContainsAny(a.Filename, "\r\n\"/\\") {
			return portal.FieldError("attachments", "", "An attachment has no usable file name.")
		}
	}
	return nil
}

// EnqueueEmail inserts e and its attachments into the outbox inside the
// caller's transaction tx: when tx rolls back, the email is gone too. The
// row is due at once (next_attempt_at = now) with a new Message-ID. It
// returns the outbox id. Call the worker's Wake after the commit to deliver
// without waiting for the next tick.
func (db *DB) EnqueueEmail(ctx context.Context, tx *sql.Tx, e portal.Email) (int64, error) {
	if err := validateEmail(e); err != nil {
		return 0, err
	}
	lang := e.Lang
	if lang == "" {
		lang = "en"
	}
	now := fmtTime(db.now())
	res, err := tx.ExecContext(ctx, `INSERT INTO outbox(created_at, to_addr, subject, text_body, html_body, lang, kind,
		status, attempts, next_attempt_at, message_id) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)`,
		now, e.To, e.Subject, e.Text, e.HTML, lang, e.Kind, now, NewMessageID())
	if err != nil {
		return 0, fmt.Errorf("enqueue email: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	for _, a := range e.Attachments {
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		data := a.Data
		if data == nil {
			data = []byte{}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbox_attachments(outbox_id, filename, content_type, data) VALUES (?, ?, ?, ?)`,
			id, a.Filename, ct, data); err != nil {
			return 0, fmt.Errorf("enqueue attachment: %w", err)
		}
	}
	return id, nil
}

// Enqueue is EnqueueEmail in a transaction of its own, for callers that
// have no other change to commit with the email.
func (db *DB) Enqueue(ctx context.Context, e portal.Email) (int64, error) {
	var id int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = db.EnqueueEmail(ctx, tx, e)
		return err
	})
	return id, err
}

const outboxCols = `id, created_at, to_addr, subject, text_body, html_body, lang, kind, status, attempts,
	next_attempt_at, last_error, sent_at, message_id`

func scanOutbox(row interface{ Scan(...any) error }) (OutboxMessage, error) {
	var m OutboxMessage
	var created, next string
	var sent sql.NullString
	err := row.Scan(&m.ID, &created, &m.To, &m.Subject, &m.Text, &m.HTML, &m.Lang, &m.Kind, &m.Status,
		&m.Attempts, &next, &m.LastError, &sent, &m.MessageID)
	m.CreatedAt = parseTime(created)
	m.NextAttemptAt = parseTime(next)
	m.SentAt = parseNullTime(sent)
	return m, err
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// loadAttachments fills the Attachments of msgs (with the data when
// withData, else names and content types only).
func loadAttachments(ctx context.Context, q querier, msgs []OutboxMessage, withData bool) error {
	if len(msgs) == 0 {
		return nil
	}
	idx := make(map[int64]int, len(msgs))
	args := make([]any, len(msgs))
	ph := make([]string, len(msgs))
	for i, m := range msgs {
		idx[m.ID] = i
		args[i] = m.ID
		ph[i] = "?"
	}
	dataCol := "data"
	if !withData {
		dataCol = "NULL"
	}
	rows, err := q.QueryContext(ctx, `SELECT outbox_id, filename, content_type, `+dataCol+`
		FROM outbox_attachments WHERE outbox_id IN (`+strings.Join(ph, ",")+`) ORDER BY id`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var oid int64
		var a portal.Attachment
		if err := rows.Scan(&oid, &a.Filename, &a.ContentType, &a.Data); err != nil {
			return err
		}
		i := idx[oid]
		msgs[i].Attachments = append(msgs[i].Attachments, a)
	}
	return rows.Err()
}

// ClaimDue atomically (one immediate transaction) claims up to limit rows
// that are due: 'pending' rows with next_attempt_at <= now, and 'sending'
// rows whose lease (claimed_until) ran out because their worker died or
// hung. Each claimed row becomes 'sending' with claimed_until = now+lease
// and attempts+1; the rows are returned with their attachments, oldest due
// first. Two concurrent callers never get the same row: SQLite admits one
// writer at a time and the second sees the first one's lease.
func (db *DB) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxMessage, error) {
	if limit <= 0 {
		limit = 1
	}
	if lease <= 0 {
		return nil, fmt.Errorf("claim: lease must be positive")
	}
	n := fmtTime(now)
	var out []OutboxMessage
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE outbox
			SET status = 'sending', claimed_until = ?, attempts = attempts + 1
			WHERE id IN (
				SELECT id FROM outbox
				WHERE (status = 'pending' AND next_attempt_at <= ?)
				   OR (status = 'sending' AND (claimed_until IS NULL OR claimed_until <= ?))
				ORDER BY next_attempt_at, id
				LIMIT ?)
			RETURNING `+outboxCols, fmtTime(now.Add(lease)), n, n, limit)
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		for rows.Next() {
			m, err := scanOutbox(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, m)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return loadAttachments(ctx, tx, out, true)
	})
	if err != nil {
		return nil, err
	}
	// RETURNING gives no order guarantee.
	sortOutbox(out)
	return out, nil
}

func sortOutbox(ms []OutboxMessage) {
	sort.Slice(ms, func(i, j int) bool {
		if !ms[i].NextAttemptAt.Equal(ms[j].NextAttemptAt) {
			return ms[i].NextAttemptAt.Before(ms[j].NextAttemptAt)
		}
		return ms[i].ID < ms[j].ID
	})
}

// MarkSent records a delivery: status 'sent', sent_at = now, the lease
// cleared. A row already marked sent keeps its first sent_at.
//
// With ScrubSentMail set (production), the delivered message keeps its
// envelope (recipient, subject, kind, times, Message-ID) and loses its
// bodies and attachments in the same transaction: they carry single-use
// links whose tokens the rest of the database keeps only as hashes
// (KeyGen, mailbox and domain validation, setup), and certificates that
// are kept elsewhere.
func (db *DB) MarkSent(ctx context.Context, id int64, now time.Time) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'sent', sent_at = COALESCE(sent_at, ?), claimed_until = NULL,
			text_body = CASE WHEN ? THEN '' ELSE text_body END, html_body = CASE WHEN ? THEN '' ELSE html_body END
			WHERE id = ?`, fmtTime(now), db.ScrubSentMail, db.ScrubSentMail, id)
		if err != nil {
			return err
		}
		if err := affectedOne(res, "outbox message"); err != nil {
			return err
		}
		if db.ScrubSentMail {
			_, err = tx.ExecContext(ctx, `DELETE FROM outbox_attachments WHERE outbox_id = ?`, id)
		}
		return err
	})
}

// ScrubSentOutbox removes the bodies and attachments of every delivered
// message (see MarkSent), e.g. those delivered before ScrubSentMail was
// set. It returns how many messages it scrubbed.
func (db *DB) ScrubSentOutbox(ctx context.Context) (int64, error) {
	var n int64
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox_attachments WHERE outbox_id IN (SELECT id FROM outbox WHERE status = 'sent')`); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET text_body = '', html_body = '' WHERE status = 'sent' AND (text_body <> '' OR html_body <> '')`)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// MarkFailed records a failed attempt. With final false the row goes back
// to 'pending' and is due again at next; with final true it becomes
// 'failed' and is not retried (RequeueOutbox brings it back). errText is
// kept (shortened) as last_error. A row that another worker has meanwhile
// delivered (status 'sent') is left alone.
func (db *DB) MarkFailed(ctx context.Context, id int64, errText string, next time.Time, final bool) error {
	status := OutboxPending
	if final {
		status = OutboxFailed
	}
	if len(errText) > maxErrorText {
		errText = errText[:maxErrorText]
	}
	res, err := db.ExecContext(ctx, `UPDATE outbox SET status = ?, last_error = ?, next_attempt_at = ?, claimed_until = NULL
		WHERE id = ? AND status <> 'sent'`, status, errText, fmtTime(next), id)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		var st string
		if err := db.QueryRowContext(ctx, `SELECT status FROM outbox WHERE id = ?`, id).Scan(&st); err != nil {
			return notFound(err, "outbox message")
		}
	}
	return nil
}

// RequeueOutbox puts a 'failed' (or 'pending') row back in the queue, due
// at now with a fresh attempt count, e.g. after an SMTP misconfiguration
// outlasted the retries. A sent or sending row is a conflict.
func (db *DB) RequeueOutbox(ctx context.Context, id int64, now time.Time) error {
	res, err := db.ExecContext(ctx, `UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, claimed_until = NULL
		WHERE id = ? AND status IN ('failed', 'pending')`, fmtTime(now), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := db.GetOutbox(ctx, id); err != nil {
		return err
	}
	return portal.Errorf(portal.EConflict, "outbox message %d is being sent or was sent", id)
}

func affectedOne(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return portal.Errorf(portal.ENotFound, "%s not found", what)
	}
	return nil
}

// ListOutbox returns outbox rows newest first, for the dev mailbox page.
// Attachments carry Filename and ContentType only (Data is nil); GetOutbox
// returns the data.
func (db *DB) ListOutbox(ctx context.Context, limit, offset int) ([]OutboxMessage, error) {
	if limit <= 0 {
		limit = 50
	}
	if offset < 0 {
		offset = 0
	}
	rows, err := db.QueryContext(ctx, `SELECT `+outboxCols+` FROM outbox ORDER BY id DESC LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return nil, err
	}
	var out []OutboxMessage
	for rows.Next() {
		m, err := scanOutbox(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, loadAttachments(ctx, db, out, false)
}

// CountOutbox returns the number of outbox rows (for paging).
func (db *DB) CountOutbox(ctx context.Context) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n)
	return n, err
}

// GetOutbox returns one outbox row with its attachments (and their data).
// An unknown id is a portal.ENotFound error.
func (db *DB) GetOutbox(ctx context.Context, id int64) (OutboxMessage, error) {
	m, err := scanOutbox(db.QueryRowContext(ctx, `SELECT `+outboxCols+` FROM outbox WHERE id = ?`, id))
	if err != nil {
		return OutboxMessage{}, notFound(err, "outbox message")
	}
	ms := []OutboxMessage{m}
	if err := loadAttachments(ctx, db, ms, true); err != nil {
		return OutboxMessage{}, err
	}
	return ms[0], nil
}

// LatestOutboxTo returns the newest outbox row addressed to `to` (compared
// case-insensitively) whose kind is kind (any kind when kind is ""), with
// attachments. Tests and the dev mailbox use it to follow a link that was
// mailed. None is a portal.ENotFound error.
func (db *DB) LatestOutboxTo(ctx context.Context, to, kind string) (OutboxMessage, error) {
	var id int64
	err := db.QueryRowContext(ctx, `SELECT id FROM outbox WHERE lower(to_addr) = lower(?) AND (? = '' OR kind = ?)
		ORDER BY id DESC LIMIT 1`, to, kind, kind).Scan(&id)
	if err != nil {
		return OutboxMessage{}, notFound(err, "outbox message")
	}
	return db.GetOutbox(ctx, id)
}
