package validation

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"

	"certdesk/internal/portal"
)

// MailboxValidated reports whether the account has a mailbox validation of
// email that is still reusable: confirmed less than 30 days ago
// (portal.MailboxValidationReuse, SBR 4.2.1). ordering.Validator.
func (s *Service) MailboxValidated(ctx context.Context, q portal.Querier, accountID int64, email string) (bool, error) {
	e, ok := portal.NormalizeEmail(email)
	if !ok {
		return false, nil
	}
	at, err := s.Store.LastMailboxValidation(ctx, q, accountID, e)
	if err != nil || at.IsZero() {
		return false, err
	}
	return s.now().Before(at.Add(portal.MailboxValidationReuse)), nil
}

// StartMailboxForOrder sends a confirmation link to the address itself
// (SBR 3.2.2.2) as part of an order. ordering.Validator.
func (s *Service) StartMailboxForOrder(ctx context.Context, tx *sql.Tx, accountID int64, email string, orderID int64, lang string) error {
	e, ok := portal.NormalizeEmail(email)
	if !ok {
		return portal.FieldError("email", "val.err.email", "Enter a valid email address, like name@example.com.")
	}
	return s.sendMailboxTx(ctx, tx, Actor{}, accountID, e, orderID, lang)
}

// sendMailboxTx makes a fresh random value (160 bits), valid 24 hours
// (SBR 3.2.2.2), stores its hash, kills the account's earlier links for the
// address and emails the link to the address.
func (s *Service) sendMailboxTx(ctx context.Context, tx *sql.Tx, a Actor, accountID int64, email string, orderID int64, lang string) error {
	now := s.now()
	tok := portal.NewToken()
	t := MailboxToken{AccountID: accountID, OrderID: orderID, Email: email, Hash: tokenHash(tok), Lang: lang,
		CreatedAt: now, ExpiresAt: now.Add(portal.MailboxValueLifetime)}
	if err := s.Store.InsertMailboxToken(ctx, tx, &t); err != nil {
		return err
	}
	detail := email
	if orderID != 0 {
		detail += " for order " + strconv.FormatInt(orderID, 10)
	}
	if err := s.audit(ctx, tx, a, AuditMailboxSent, "mailbox", t.ID, accountID, detail); err != nil {
		return err
	}
	return s.mail(ctx, tx, lang, KindMailboxConfirm, email, "val.mail.mailbox.subject",
		[]string{"val.mail.mailbox.greeting", "val.mail.mailbox.body", "val.mail.mailbox.ignore"},
		map[string]any{"Email": email, "Expires": t.ExpiresAt.Format("2006-01-02 15:04 MST")},
		[]MailLink{{Label: "val.mail.mailbox.open", URL: s.link("/verify/mailbox/" + tok)}})
}

// ResendMailbox sends a new confirmation link for an address the account
// already asked to confirm; the old link stops working.
func (s *Service) ResendMailbox(ctx context.Context, a Actor, accountID int64, email, lang string) error {
	e, ok := portal.NormalizeEmail(email)
	if !ok {
		return portal.Errorf(portal.ENotFound, "not found")
	}
	return s.Store.Tx(ctx, func(tx *sql.Tx) error {
		last, err := s.Store.LatestMailboxToken(ctx, tx, accountID, e)
		if err != nil {
			return err // ENotFound: never asked, or another account's address
		}
		return s.sendMailboxTx(ctx, tx, a, accountID, e, last.OrderID, lang)
	})
}

// MailboxLinkInfo is what the public confirmation page shows.
type MailboxLinkInfo struct {
	Email   string
	Expires time.Time
}

func (s *Service) lookupMailboxToken(ctx context.Context, q portal.Querier, token string) (MailboxToken, error) {
	if strings.TrimSpace(token) == "" || len(token) > 128 {
		return MailboxToken{}, ErrLinkUnknown
	}
	h := tokenHash(token)
	t, err := s.Store.MailboxTokenByHash(ctx, q, h)
	if portal.ErrorCode(err) == portal.ENotFound || (err == nil && !portal.TokenEqual(h, t.Hash)) {
		return t, ErrLinkUnknown
	}
	if err != nil {
		return t, err
	}
	switch {
	case !t.UsedAt.IsZero():
		return t, ErrLinkUsed
	case !t.KilledAt.IsZero():
		return t, ErrLinkKilled
	case !s.now().Before(t.ExpiresAt):
		return t, ErrLinkExpired // SBR 3.2.2.2: 24 hours
	}
	return t, nil
}

// MailboxInfo checks a confirmation link without using it (GET).
func (s *Service) MailboxInfo(ctx context.Context, token string) (MailboxLinkInfo, error) {
	t, err := s.lookupMailboxToken(ctx, nil, token)
	if err != nil {
		return MailboxLinkInfo{}, err
	}
	return MailboxLinkInfo{Email: t.Email, Expires: t.ExpiresAt}, nil
}

// ConfirmMailbox uses a confirmation link (POST, single-use): the mailbox
// is validated now, reusable for 30 days, and waiting recipients move on.
func (s *Service) ConfirmMailbox(ctx context.Context, token, ip string) (MailboxLinkInfo, error) {
	var t MailboxToken
	err := s.Store.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if t, err = s.lookupMailboxToken(ctx, tx, token); err != nil {
			return err
		}
		if err := s.Store.UseMailboxToken(ctx, tx, t.ID, s.now()); err != nil {
			return err
		}
		return s.audit(ctx, tx, Actor{Email: t.Email, IP: ip}, AuditMailboxConfirmed, "mailbox", t.ID, t.AccountID,
			t.Email+" confirmed by the link sent to it (SBR 3.2.2.2)")
	})
	if err != nil {
		return MailboxLinkInfo{}, err
	}
	s.advance(ctx, t.AccountID)
	return MailboxLinkInfo{Email: t.Email, Expires: t.ExpiresAt}, nil
}
