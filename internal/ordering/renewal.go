package ordering

// Multi-year plans and auto-renew (issue 5, point 8).
//
// A certificate may be valid at most 825 days (SBR 6.3.2), but an order may
// run up to three years. Such an order is a plan: one certificate per plan
// period, each capped at 825 days and at the order's PeriodEnd by the CA
// (ca.IssueRequest.PeriodEnd). Renewals.Sweep, run by the server's
// scheduler every minute, does two things:
//
// Plans. 30 days before a recipient's current certificate expires, when the
// order's period goes on after it, the recipient's next plan period starts:
// recipients.plan_period is bumped by a conditional UPDATE (WHERE
// plan_period = N AND status = 'issued'), so of any number of sweeps exactly
// one starts period N+1; the partial unique index certificates_live then
// allows exactly one certificate for it. The recipient is emailed, then
// goes through the same steps as a new order's recipient (Service
// advanceRecipients): validations that are no longer current (SBR 4.2.1
// reuse periods: a mailbox validation is reused 30 days, a domain 398, an
// organization 825) are started again as for an order, and then:
//
//   - a recipient whose order came with a CSR gets the next certificate for
//     the SAME public key, issued at once. SBR 4.6 (certificate renewal,
//     same key) and 4.7 (re-key) make no stipulation, and 6.3.2 limits the
//     certificate's validity, not the key's: renewing the certificate for
//     the key the subscriber sent is allowed. The stored CSR is parsed
//     again under today's intake policy (ca.ParseCSR: weak and blocked keys,
//     key sizes) when the period starts: a key that is no longer acceptable
//     is not reissued; the CSR is dropped and the recipient gets a KeyGen
//     link for a new key, the email says why. The email says the key is
//     the same, and what to do when it was lost or compromised. (The issue
//     asks for "send a new CSR"; there is no page where a recipient or
//     requestor can send one for an existing recipient, and the
//     requestor's "send a new KeyGen link" refuses a certificate that was
//     not made with KeyGen, so the email must not offer either.)
//   - a recipient whose certificate was made with KeyGen gets a new KeyGen
//     link (LinkService.SendLink) and makes a new key: the old private key
//     lives only in the recipient's .p12 file, and building a new file
//     around it is not something a mail user can do.
//
// The next certificate starts when it is issued (NotBefore now) and ends at
// NotBefore + 825 days or the order's PeriodEnd, whichever comes first.
// Later periods settle nothing (Pipeline.amountDue): the whole plan was
// paid with the order. The order goes back to 'pending' while a period is
// open (as for a KeyGen re-issue) and is completed again by the issuance.
// A recipient whose current certificate was revoked, or whose order was
// cancelled, is left alone (StartPlanPeriod checks both again, so a
// revocation after the sweep listed the recipient counts too).
//
// Auto-renew. An order with AutoRenew whose PeriodEnd is 30 days away or
// less (or passed, up to 30 days) and that has a recipient whose current
// certificate is issued gets one renewal order through Service.Submit,
// the same path as the form and the API: same product, organization,
// hash, recipients (emails and names; CSRs dropped, so each recipient gets
// a KeyGen link once validated; only recipients whose current certificate
// is issued: a revoked certificate, or none, is not renewed and not
// charged again), a period of the same number of days counted from now,
// the same payment method (a card payment uses the card on file), the
// payment authorization and the confirmation emails in one transaction.
// The order is read again just before (cancelled or auto-renew off:
// nothing is placed).
// Exactly once: Submit runs with an idempotency key derived from the old
// order (the UNIQUE (account_id, idempotency_key) constraint), and
// orders.renewal_order_id is set by a conditional UPDATE. The renewal order
// records the agreement the customer accepted when they turned auto-renew
// on (the old order's version and time), and RenewedFrom. A refusal
// (payment declined, no card on file, a product rule) is recorded on the
// old order (in English and Dutch: EncodeRenewalFailure), the requestor is
// emailed once, and the attempt is repeated daily until 30 days after the
// period ended.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"certdesk/internal/i18n"
	"certdesk/internal/mail"
	"certdesk/internal/portal"
)

const (
	// RenewBefore: a plan's next certificate is started, and an auto-renew
	// order placed, this long before the current one ends.
	RenewBefore = 30 * 24 * time.Hour
	// PlanMinRemainder: a plan with less than this left after the current
	// certificate gets no further certificate (the CA's rounding of
	// NotAfter to seconds must not start a period of a few seconds).
	PlanMinRemainder = 24 * time.Hour
	// AutoRenewRetryEvery: a refused auto-renew is tried again this often...
	AutoRenewRetryEvery = 24 * time.Hour
	// AutoRenewGiveUpAfter: ...until this long after the period ended.
	AutoRenewGiveUpAfter = 30 * 24 * time.Hour
)

// Mail kinds of renewals (keys in locales/renewal.*.toml).
const (
	KindPlanNext         = "plan_next_certificate"
	KindAutoRenewed      = "auto_renewed"
	KindAutoRenewRefused = "auto_renew_refused"
)

// AutoRenewKey is the idempotency key of the renewal order of an order.
func AutoRenewKey(orderID int64) string {
	return "certdesk-auto-renew-of-order-" + strconv.FormatInt(orderID, 10)
}

// PlanDue is a recipient whose current certificate ends within
// RenewBefore while its order's period goes on (store.DB.PlansDue).
type PlanDue struct {
	RecipientID  int64
	OrderID      int64
	PlanPeriod   int // the current period, whose certificate is issued
	CertNotAfter time.Time
	PeriodEnd    time.Time
	// KeyGen: the current certificate was issued through a KeyGen link.
	KeyGen bool
}

// RenewalStore is what renewals need from the database (store.DB).
type RenewalStore interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	// PlansDue lists issued recipients whose current (not revoked)
	// certificate of their current period ends at or before until, in
	// orders not cancelled whose period ends after now.
	PlansDue(ctx context.Context, now, until time.Time) ([]PlanDue, error)
	// StartPlanPeriod moves an issued recipient from period from to
	// from+1 (awaiting key generation; the CSR kept when keepCSR) and its
	// order back to pending, inside tx. False when the recipient is no
	// longer issued in period from (another sweep started it).
	StartPlanPeriod(ctx context.Context, tx *sql.Tx, recipientID int64, from int, keepCSR bool) (bool, error)
	// AutoRenewDue lists orders with auto-renew, not cancelled, without a
	// renewal order, with a recipient whose current certificate is issued,
	// whose period ends in (after, until], and not attempted since
	// retryBefore.
	AutoRenewDue(ctx context.Context, after, until, retryBefore time.Time) ([]portal.Order, error)
	// OrderIDByIdempotencyKey finds an account's order by its key (0 when none).
	OrderIDByIdempotencyKey(ctx context.Context, q portal.Querier, accountID int64, key string) (int64, error)
	// LinkRenewal records renewal as the renewal order of order (and
	// renewal's RenewedFrom and agreement), inside tx; false when order
	// already had one.
	LinkRenewal(ctx context.Context, tx *sql.Tx, orderID, renewalID int64, agreementVersion string, agreedAt time.Time) (bool, error)
	// RenewalRefused records a refused attempt at at unless one was
	// recorded since retryBefore; it returns the number of refusals so far
	// (0 when nothing was recorded), inside tx.
	RenewalRefused(ctx context.Context, tx *sql.Tx, orderID int64, reason string, at, retryBefore time.Time) (int, error)

	// RenewalRecipients lists the order's recipients whose current
	// certificate is issued (not revoked): the ones a renewal order renews.
	RenewalRecipients(ctx context.Context, q portal.Querier, orderID int64) ([]portal.Recipient, error)

	Recipient(ctx context.Context, q portal.Querier, id int64) (portal.Recipient, error)
	OrderHead(ctx context.Context, q portal.Querier, id int64) (portal.Order, int, error)
	UserByID(ctx context.Context, id int64) (portal.User, error)
	EnqueueEmail(ctx context.Context, tx *sql.Tx, e portal.Email) (int64, error)
}

// Renewals runs plan continuations and auto-renew (the scheduler calls
// Sweep).
type Renewals struct {
	Store RenewalStore
	// Orders is the ordering service: its Validator, KeyGen and Issuer move
	// a recipient's new period on, its Submit places renewal orders.
	Orders *Service
	Clock  portal.Clock
	Log    *slog.Logger
	// Mail is nudged after a commit that queued email (may be nil).
	Mail interface{ Wake() }
	// BaseURL of the portal, for links in emails ("" leaves them out).
	BaseURL string
}

func (rn *Renewals) log() *slog.Logger {
	if rn.Log == nil {
		return slog.Default()
	}
	return rn.Log
}

// SweepResult counts what one sweep did.
type SweepResult struct {
	PeriodsStarted int // recipients moved to their next plan period
	Renewed        int // renewal orders placed (or found and linked)
	Refused        int // auto-renew attempts refused
}

// Sweep starts due plan periods and places due auto-renew orders. It is
// idempotent and safe to run concurrently: a second run does nothing.
func (rn *Renewals) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	now := rn.Clock.Now()
	var errs []error
	due, err := rn.Store.PlansDue(ctx, now, now.Add(RenewBefore))
	if err != nil {
		errs = append(errs, fmt.Errorf("plans due: %w", err))
	}
	for _, d := range due {
		if ctx.Err() != nil {
			break
		}
		if d.PeriodEnd.Sub(d.CertNotAfter) < PlanMinRemainder {
			continue
		}
		started, err := rn.startNextPeriod(ctx, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("recipient %d: next plan period: %w", d.RecipientID, err))
		}
		if started {
			res.PeriodsStarted++
		}
	}
	orders, err := rn.Store.AutoRenewDue(ctx, now.Add(-AutoRenewGiveUpAfter), now.Add(RenewBefore), now.Add(-AutoRenewRetryEvery))
	if err != nil {
		errs = append(errs, fmt.Errorf("auto-renew due: %w", err))
	}
	for _, o := range orders {
		if ctx.Err() != nil {
			break
		}
		renewed, refused, err := rn.renew(ctx, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("order %d: auto-renew: %w", o.ID, err))
		}
		if renewed {
			res.Renewed++
		}
		if refused {
			res.Refused++
		}
	}
	return res, errors.Join(errs...)
}

// RenewalSweep is Sweep for the scheduler: the counts are logged.
func (rn *Renewals) RenewalSweep(ctx context.Context) error {
	res, err := rn.Sweep(ctx)
	if res.PeriodsStarted+res.Renewed+res.Refused > 0 {
		rn.log().Info("renewal sweep", "plan_periods_started", res.PeriodsStarted, "renewal_orders", res.Renewed,
			"auto_renew_refused", res.Refused)
	}
	return err
}

// startNextPeriod starts period d.PlanPeriod+1 of a recipient (see the
// package comment above) and, when its CSR is kept and nothing else is
// missing, issues it.
func (rn *Renewals) startNextPeriod(ctx context.Context, d PlanDue) (bool, error) {
	s := rn.Orders
	var r portal.Recipient
	started := false
	err := rn.Store.Tx(ctx, func(tx *sql.Tx) error {
		// The order's CSR is kept only when today's intake policy still
		// accepts its key: a refused key would be held at issuance with no
		// way out (the stored CSR is all there is: a release holds it again,
		// and "send a new KeyGen link" is for KeyGen certificates only), so
		// the recipient makes a new key through a KeyGen link instead.
		keep, keyRefused := !d.KeyGen, error(nil)
		if keep && s.ParseCSR != nil {
			cur, err := rn.Store.Recipient(ctx, tx, d.RecipientID)
			if err != nil {
				return err
			}
			if _, perr := s.ParseCSR([]byte(cur.CSR)); perr != nil {
				if portal.ErrorCode(perr) == portal.EInternal {
					return perr
				}
				keep, keyRefused = false, perr
			}
		}
		ok, err := rn.Store.StartPlanPeriod(ctx, tx, d.RecipientID, d.PlanPeriod, keep)
		if err != nil || !ok {
			return err
		}
		o, _, err := rn.Store.OrderHead(ctx, tx, d.OrderID) // not its other recipients: this runs per recipient
		if err != nil {
			return err
		}
		u, err := rn.Store.UserByID(ctx, o.UserID)
		if err != nil {
			return err
		}
		if r, err = rn.Store.Recipient(ctx, tx, d.RecipientID); err != nil {
			return err
		}
		// The recipient's next status is computed as for a new order; a
		// zero status in hand makes advanceRecipients write it (and send
		// the KeyGen link when that is what is next).
		adv := r
		adv.Status = ""
		if err := s.advanceRecipients(ctx, tx, []portal.Recipient{adv}, map[int64]portal.Order{o.ID: o}, nil); err != nil {
			return err
		}
		if r, err = rn.Store.Recipient(ctx, tx, d.RecipientID); err != nil {
			return err
		}
		if err := rn.restartValidation(ctx, tx, o, r, u.Lang); err != nil {
			return err
		}
		e, err := rn.planEmail(u.Lang, o, r, d, keyRefused)
		if err != nil {
			return err
		}
		if _, err := rn.Store.EnqueueEmail(ctx, tx, e); err != nil {
			return err
		}
		started = true
		return nil
	})
	if err != nil || !started {
		return false, err
	}
	rn.wake()
	rn.log().Info("plan: next period started", "recipient_id", r.ID, "order_id", r.OrderID, "plan_period", r.PlanPeriod,
		"status", string(r.Status))
	if r.Status == portal.RecipientReady && s.Issuer != nil {
		// Idempotent; on failure the recipient stays ready and the
		// scheduler's IssueReady tries again (the order is pending).
		if err := s.Issuer.IssueRecipient(ctx, r.ID); err != nil {
			rn.log().Warn("plan: issuance deferred", "recipient_id", r.ID, "err", err)
		}
	}
	return true, nil
}

// restartValidation starts again, as part of the order, a validation that
// is no longer current (the same calls Submit makes for a new order).
func (rn *Renewals) restartValidation(ctx context.Context, tx *sql.Tx, o portal.Order, r portal.Recipient, lang string) error {
	v := rn.Orders.Validator
	if v == nil {
		return nil
	}
	switch r.Status {
	case portal.RecipientAwaitingOrg:
		return v.SubmitOrgForOrder(ctx, tx, o.AccountID, o.OrganizationID, o.ID)
	case portal.RecipientAwaitingDomain:
		return v.StartDomainEmailForOrder(ctx, tx, o.AccountID, o.OrganizationID, portal.EmailDomain(r.Email), o.ID, lang)
	case portal.RecipientAwaitingMailbox:
		return v.StartMailboxForOrder(ctx, tx, o.AccountID, r.Email, o.ID, lang)
	}
	return nil
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// planEmail tells the recipient that the next certificate of the plan is
// on its way and how it comes; keyRefused is why the order's CSR was not
// kept (nil when it was, or when there was none).
func (rn *Renewals) planEmail(lang string, o portal.Order, r portal.Recipient, d PlanDue, keyRefused error) (portal.Email, error) {
	how := "renewal.mail.plan.validation"
	switch r.Status {
	case portal.RecipientReady:
		how = "renewal.mail.plan.same_key"
	case portal.RecipientAwaitingKeyGen:
		how = "renewal.mail.plan.keygen"
	}
	name := r.Email
	if r.CNFromName && r.CommonName != "" {
		name = r.CommonName
	}
	data := map[string]any{"Email": r.Email, "Name": name, "OrderID": o.ID, "Period": r.PlanPeriod,
		"NotAfter": day(d.CertNotAfter), "PeriodEnd": day(o.PeriodEnd)}
	body := "renewal.mail.plan.body"
	if !d.CertNotAfter.After(rn.Clock.Now()) {
		// The server was down past the certificate's end: it has ended.
		body = "renewal.mail.plan.body_ended"
	}
	paras := []string{"renewal.mail.plan.greeting", body}
	if keyRefused != nil {
		data["Reason"] = refusalText(lang, keyRefused)
		paras = append(paras, "renewal.mail.plan.key_refused")
	}
	paras = append(paras, how, "renewal.mail.plan.keep")
	e, err := mail.Compose(lang, "renewal.mail.plan.subject", paras, data, nil)
	if err != nil {
		return e, err
	}
	e.To, e.Kind = r.Email, KindPlanNext
	return e, nil
}

// renew places the renewal order of o (see the package comment above).
func (rn *Renewals) renew(ctx context.Context, o portal.Order) (renewed, refused bool, err error) {
	key := AutoRenewKey(o.ID)
	id, err := rn.Store.OrderIDByIdempotencyKey(ctx, nil, o.AccountID, key)
	if err != nil {
		return false, false, err
	}
	u, err := rn.Store.UserByID(ctx, o.UserID)
	if err != nil {
		return false, false, err
	}
	if id == 0 {
		// The order as it is now: the list is read once per sweep, and a
		// Submit (a card gateway) may take a while per order.
		cur, _, err := rn.Store.OrderHead(ctx, nil, o.ID)
		if err != nil {
			return false, false, err
		}
		if cur.Status == portal.OrderCancelled || !cur.AutoRenew {
			return false, false, nil
		}
		// Only recipients whose current certificate is issued are renewed:
		// one whose certificate was revoked (the person left, the mailbox
		// was given up) or who never got one is not ordered and charged
		// again, nor emailed a KeyGen link.
		recips, err := rn.Store.RenewalRecipients(ctx, nil, o.ID)
		if err != nil || len(recips) == 0 {
			return false, false, err
		}
		// The recipients' CSRs are not carried over: each gets a KeyGen link
		// (a new key for the new order).
		in := Input{Product: o.Product, OrganizationID: o.OrganizationID, SignatureHash: o.SignatureHash,
			Validity: ValidityCustomDays, CustomDays: strconv.Itoa(min(max(Days(o.PeriodStart, o.PeriodEnd), 1), 1095)),
			AutoRenew: true, AdditionalEmails: strings.Join(o.AdditionalEmails, ","), PaymentMethod: o.PaymentMethod,
			Card: Card{OnFile: true}, Agreed: true, IdempotencyKey: key, Lang: u.Lang}
		for _, r := range recips {
			in.Recipients = append(in.Recipients, RecipientInput{CNFromName: r.CNFromName, Name: r.CommonName, Email: r.Email})
		}
		placed, err := rn.Orders.Submit(ctx, u, in)
		if err != nil {
			if portal.ErrorCode(err) == portal.EInternal {
				return false, false, err
			}
			return false, true, rn.refused(ctx, o, u, err)
		}
		id = placed.ID
	}
	linked := false
	err = rn.Store.Tx(ctx, func(tx *sql.Tx) error {
		ok, err := rn.Store.LinkRenewal(ctx, tx, o.ID, id, o.AgreementVersion, o.AgreedAt)
		if err != nil || !ok {
			return err
		}
		linked = true
		data := map[string]any{"OldID": o.ID, "OrderID": id, "PeriodEnd": day(o.PeriodEnd)}
		var links []mail.Link
		if rn.BaseURL != "" {
			links = []mail.Link{{Label: "renewal.mail.renewed.open", URL: strings.TrimRight(rn.BaseURL, "/") + "/orders/" + strconv.FormatInt(id, 10)}}
		}
		e, err := mail.Compose(u.Lang, "renewal.mail.renewed.subject", []string{"renewal.mail.renewed.body"}, data, links)
		if err != nil {
			return err
		}
		e.To, e.Kind = u.Email, KindAutoRenewed
		_, err = rn.Store.EnqueueEmail(ctx, tx, e)
		return err
	})
	if err != nil {
		return false, false, err
	}
	if linked {
		rn.wake()
		rn.log().Info("auto-renew: renewal order placed", "order_id", o.ID, "renewal_order_id", id)
	}
	return linked, false, nil
}

// refused records a refused auto-renew attempt and emails the requestor
// on the first one.
func (rn *Renewals) refused(ctx context.Context, o portal.Order, u portal.User, cause error) error {
	reason := refusalText("en", cause)
	recorded := EncodeRenewalFailure(cause)
	now := rn.Clock.Now()
	mailed := false
	err := rn.Store.Tx(ctx, func(tx *sql.Tx) error {
		n, err := rn.Store.RenewalRefused(ctx, tx, o.ID, recorded, now, now.Add(-AutoRenewRetryEvery))
		if err != nil || n != 1 {
			return err
		}
		data := map[string]any{"OrderID": o.ID, "Reason": refusalText(u.Lang, cause), "PeriodEnd": day(o.PeriodEnd),
			"Until": day(o.PeriodEnd.Add(AutoRenewGiveUpAfter))}
		var links []mail.Link
		if rn.BaseURL != "" {
			links = []mail.Link{{Label: "renewal.mail.refused.open", URL: strings.TrimRight(rn.BaseURL, "/") + "/orders/" + strconv.FormatInt(o.ID, 10)}}
		}
		e, err := mail.Compose(u.Lang, "renewal.mail.refused.subject", []string{"renewal.mail.refused.body", "renewal.mail.refused.retry"}, data, links)
		if err != nil {
			return err
		}
		e.To, e.Kind = u.Email, KindAutoRenewRefused
		_, err = rn.Store.EnqueueEmail(ctx, tx, e)
		mailed = true
		return err
	})
	if err == nil && mailed {
		rn.wake()
	}
	rn.log().Warn("auto-renew refused", "order_id", o.ID, "reason", reason)
	return err
}

// EncodeRenewalFailure is how a refused attempt's reason is recorded on
// the order (orders.renewal_failure): a JSON object of the reason in every
// language of the catalogue ({"en": "...", "nl": "..."}), so the order page
// shows it in its reader's language. RenewalFailureIn reads it back.
func EncodeRenewalFailure(cause error) string {
	m := make(map[string]string, len(i18n.Languages))
	for _, lang := range i18n.Languages {
		m[lang] = refusalText(lang, cause)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return m["en"]
	}
	return string(b)
}

// RenewalFailureIn is a recorded refusal's reason in lang, in English when
// lang is not recorded; a value that is not EncodeRenewalFailure's (a row
// recorded before it) is returned as it is.
func RenewalFailureIn(recorded, lang string) string {
	if !strings.HasPrefix(recorded, "{") {
		return recorded
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(recorded), &m); err != nil {
		return recorded
	}
	if s, ok := m[lang]; ok {
		return s
	}
	return m["en"]
}

// refusalText joins the messages of a refusal (one per field) in lang
// when the catalogue has them, in English otherwise.
func refusalText(lang string, err error) string {
	fe := portal.AsFieldErrors(err)
	if len(fe) == 0 {
		return portal.ErrorMessage(err)
	}
	loc := i18n.For(lang)
	msgs := make([]string, 0, len(fe))
	for _, e := range fe {
		if e.Key != "" && lang != "en" && i18n.Has(loc.Lang, e.Key) {
			msgs = append(msgs, loc.T(e.Key, e.Data))
		} else {
			msgs = append(msgs, e.Message)
		}
	}
	return strings.Join(msgs, " ")
}

func (rn *Renewals) wake() {
	if rn.Mail != nil {
		rn.Mail.Wake()
	}
}
