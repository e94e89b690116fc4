// Package mail delivers certdesk's transactional email from the outbox and
// renders the messages in the recipient's language.
//
// # Flow
//
// A service writes a portal.Email into the outbox (store.DB.EnqueueEmail)
// in the SAME database transaction as the change that causes it: the mail
// exists if and only if the change committed. The Worker claims due rows,
// hands each to a Sender and records the outcome:
//
//	web/service tx:  INSERT order ...; db.EnqueueEmail(ctx, tx, email); COMMIT; worker.Wake()
//	Worker.RunOnce:  outbox.ClaimDue -> Sender.Send -> outbox.MarkSent | outbox.MarkFailed
//
// # Wiring (cmd/certdesk)
//
// mail does not import store (store imports portal only, and the wiring
// lives in cmd). mail.Message has exactly the fields of store.OutboxMessage,
// so the adapter is one line:
//
//	outbox := mail.NewOutbox(db, func(r store.OutboxMessage) mail.Message { return mail.Message(r) })
//	sender, err := mail.NewSender(cfg.SMTPURL, cfg.MailFrom) // DevSender when the URL is empty
//	w := &mail.Worker{Outbox: outbox, Sender: sender, Clock: clock, Logger: logger}
//	go w.Run(ctx)
//
// If a field is added to one struct and not the other, that conversion stops
// compiling: fix it there.
//
// # Delivery guarantees
//
//   - No email is lost by a crash or an SMTP outage. A row stays 'pending'
//     (retried with exponential backoff, DefaultBackoff: 30 s, 1 min, 2 min ...
//     capped at 1 h) or 'sending' (its lease runs out and it is claimed
//     again). Only a permanent rejection (5xx to RCPT or DATA, see Permanent)
//     or MaxAttempts failed attempts (default 10, about 3 hours of retries)
//     make it 'failed'; store.DB.RequeueOutbox brings it back.
//   - One row is never sent by two workers at once: ClaimDue is one immediate
//     SQLite transaction and a claimed row is invisible until its lease
//     (Worker.Lease, default 5 min) ends. The Worker gives each send a
//     context deadline below half the lease (SendTimeout) and the SMTP
//     sender's connection deadlines bound one exchange to about 2 x 30 s, so
//     a live worker finishes (or gives up) before anyone else may claim its
//     row. Only a worker stalled longer than the lease (a frozen VM) could
//     overlap with the next claimer; that is the crash case below.
//   - Exactly-once is impossible with SMTP at one instant: if the process
//     dies after the server answered 250 to the final "." and before MarkSent
//     committed, nothing records that the server accepted the message, and
//     the row is sent again after the lease. The design bounds this: the
//     window is one SMTP reply plus one small UPDATE; at most one duplicate
//     per crash per row (the resend re-claims under a new lease); and the
//     duplicate carries the SAME Message-ID header (fixed in the row at
//     enqueue time), so mail stores and clients that de-duplicate on
//     Message-ID (and any human reading headers) recognise it. Delivery is
//     therefore at-least-once with recognisable duplicates.
//
// # Senders
//
//   - SMTPSender (github.com/wneessen/go-mail) for smtp://, smtp+starttls://
//     and smtps:// URLs.
//   - DevSender when no SMTP URL is configured: Send does nothing and
//     succeeds, so rows become 'sent' at once. The mail is not lost: the dev
//     mailbox page reads the outbox rows (store.DB.ListOutbox/GetOutbox),
//     subject, bodies and attachments, and shows them with status sent.
//
// # Privacy
//
// Bodies carry links that are credentials (setup, KeyGen, validation
// links). Nothing in this package logs a body, a subject or a recipient:
// logs carry the outbox id, kind, attempt number and the error.
//
// # Messages
//
// Render(lang, kind, data) renders a registered kind; Compose builds one
// ad hoc from catalogue keys. Both produce subject, plain text and HTML from
// go-i18n messages (internal/i18n/locales/<feature>.<lang>.toml) with one
// shared text layout and one shared html/template layout (everything
// escaped). See compose.go.
package mail
