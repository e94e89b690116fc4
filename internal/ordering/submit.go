package ordering

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"certdesk/internal/portal"
)

// Submit checks and stores an order: the order and its recipients, the
// payment authorization, the validation tasks and the confirmation emails
// commit in one transaction. A resubmission with the same idempotency key
// returns the first order. Then recipients are advanced (and issued when
// nothing is missing).
func (s *Service) Submit(ctx context.Context, u portal.User, in Input) (portal.Order, error) {
	ch, err := s.Check(ctx, u, in)
	if err = s.refuseCompromisedKeys(ctx, ch, err); err != nil {
		return portal.Order{}, err
	}
	o := ch.Order
	// KeyGen links (token and email) for the recipients without a CSR are
	// made here, outside the single writer; unneeded ones are dropped.
	var prepared []*PreparedLink
	if lp, ok := s.KeyGen.(LinkPreparer); ok {
		prepared = make([]*PreparedLink, len(o.Recipients))
		for i, r := range o.Recipients {
			if r.CSR != "" {
				continue
			}
			if prepared[i], err = lp.PrepareLink(ctx, o, r); err != nil {
				return portal.Order{}, err
			}
		}
	}
	// A card is authorized at the gateway before the transaction (a
	// gateway's answer time must not hold the writer); a resubmission
	// returns the first order without touching the card again.
	var hold *CardHold
	holder, _ := s.Billing.(CardHolder)
	if o.PaymentMethod == portal.PayCard && holder != nil {
		if in.IdempotencyKey != "" {
			if id, err := s.Store.OrderIDByIdempotencyKey(ctx, nil, u.AccountID, in.IdempotencyKey); err == nil && id != 0 {
				return s.Store.Order(ctx, nil, u.AccountID, id)
			}
		}
		c := in.Card
		h, err := holder.HoldCard(ctx, o.AccountID, o.AmountCents, &c)
		if err != nil {
			return portal.Order{}, err
		}
		hold = &h
	}
	// Group commit (store.GroupTx): concurrent submissions share one
	// transaction and one fsync, each in its own savepoint; fn's ctx has no
	// cancellation (a half-written order is rolled back, never interrupted).
	err = s.Store.GroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := s.Store.InsertOrder(ctx, tx, &o, in.IdempotencyKey); err != nil {
			return err
		}
		var ref string
		var err error
		if hold != nil {
			if ref, err = holder.RecordCardHold(ctx, tx, o.AccountID, o.ID, *hold); err != nil {
				return err
			}
		} else {
			var card *Card
			if o.PaymentMethod == portal.PayCard {
				c := in.Card
				card = &c
			}
			if ref, err = s.Billing.Authorize(ctx, tx, o.AccountID, o.ID, o.PaymentMethod, o.AmountCents, card); err != nil {
				return err
			}
		}
		if err := s.Store.SetOrderPaymentRef(ctx, tx, o.ID, ref); err != nil {
			return err
		}
		o.PaymentRef = ref
		if ch.OrgNeedsValidation {
			if err := s.Validator.SubmitOrgForOrder(ctx, tx, o.AccountID, o.OrganizationID, o.ID); err != nil {
				return err
			}
		}
		for _, d := range ch.NewDomains {
			if err := s.Validator.StartDomainEmailForOrder(ctx, tx, o.AccountID, o.OrganizationID, d, o.ID, in.Lang); err != nil {
				return err
			}
		}
		if ch.Product.MailboxValidation {
			for _, r := range o.Recipients {
				ok, err := s.Validator.MailboxValidated(ctx, tx, o.AccountID, r.Email)
				if err != nil {
					return err
				}
				if !ok {
					if err := s.Validator.StartMailboxForOrder(ctx, tx, o.AccountID, r.Email, o.ID, in.Lang); err != nil {
						return err
					}
				}
			}
		}
		if s.Notifier != nil {
			lang := in.Lang
			for _, to := range append([]string{u.Email}, o.AdditionalEmails...) {
				if _, err := s.Store.EnqueueEmail(ctx, tx, s.Notifier.OrderConfirmation(lang, o, to)); err != nil {
					return err
				}
			}
		}
		var links map[int64]*PreparedLink
		if prepared != nil {
			links = make(map[int64]*PreparedLink, len(prepared))
			for i, p := range prepared {
				if p != nil {
					links[o.Recipients[i].ID] = p
				}
			}
		}
		return s.advanceRecipients(ctx, tx, o.Recipients, map[int64]portal.Order{o.ID: o}, links)
	})
	if err != nil && hold != nil {
		// The order was not stored: let go of the card hold.
		if rerr := holder.ReleaseCardHold(context.WithoutCancel(ctx), *hold); rerr != nil {
			s.Log.Error("card hold of an order that was not stored could not be released", "err", rerr)
		}
	}
	var pe *portal.Error
	if errors.As(err, &pe) && pe.Key == "order.duplicate" {
		return s.Store.Order(ctx, nil, u.AccountID, o.ID)
	}
	if err != nil {
		return portal.Order{}, err
	}
	// Only a recipient with a CSR can be ready to issue now; the others
	// wait for a validation or for KeyGen.
	for _, r := range o.Recipients {
		if r.CSR != "" {
			s.issueReadyOf(ctx, o.ID)
			break
		}
	}
	return s.Store.Order(ctx, nil, u.AccountID, o.ID)
}

// refuseCompromisedKeys adds to Check's outcome (ch, err) a field error
// beside every CSR whose key was reported compromised (SBR 6.1.1.3 (4):
// a certificate of that key was revoked for keyCompromise), so the order
// form and the API refuse it at once with the other errors, instead of an
// order whose issuance is held. The pipeline checks again at issuance.
func (s *Service) refuseCompromisedKeys(ctx context.Context, ch *Checked, err error) error {
	if ch == nil || s.ParseCSR == nil {
		return err
	}
	var fe portal.FieldErrors
	if err != nil && !errors.As(err, &fe) {
		return err
	}
	for i, r := range ch.Order.Recipients {
		if r.CSR == "" {
			continue
		}
		pub, perr := s.ParseCSR([]byte(r.CSR))
		if perr != nil {
			continue // Check reported it
		}
		bad, kerr := isKeyCompromised(ctx, s.Store, pub)
		if kerr != nil {
			return kerr
		}
		if bad {
			fe.Add(RecipientField(i, "csr"), "certs.csr_key_compromised",
				"The key of this CSR was reported compromised (a certificate for it was revoked for key compromise), so no certificate can be issued for it. Generate a new key and paste its CSR.")
		}
	}
	return fe.Err()
}

// Advance recomputes every open recipient of an account (0 = all) after a
// validation changed, sends KeyGen links to those that now wait for a key,
// and issues those that are ready. Safe to call any number of times.
func (s *Service) Advance(ctx context.Context, accountID int64) error {
	if err := s.Store.Tx(ctx, func(tx *sql.Tx) error { return s.advanceTx(ctx, tx, accountID) }); err != nil {
		return err
	}
	s.issueReady(ctx, accountID)
	return nil
}

func (s *Service) advanceTx(ctx context.Context, tx *sql.Tx, accountID int64) error {
	open, err := s.Store.OpenRecipients(ctx, tx, accountID)
	if err != nil {
		return err
	}
	return s.advanceRecipients(ctx, tx, open, map[int64]portal.Order{}, nil)
}

// advanceRecipients moves each open recipient to its next status; orders
// caches the recipients' orders (missing ones are loaded; Submit passes
// the order it just inserted, so it is not read back). links holds KeyGen
// links prepared before the transaction, by recipient ID (may be nil).
func (s *Service) advanceRecipients(ctx context.Context, tx *sql.Tx, open []portal.Recipient, orders map[int64]portal.Order,
	links map[int64]*PreparedLink) error {
	now := s.Clock.Now()
	var err error
	orgs := map[int64]portal.Organization{}
	domains := map[int64][]portal.Domain{}
	for _, r := range open {
		o, ok := orders[r.OrderID]
		if !ok {
			if o, _, err = s.Store.OrderHead(ctx, tx, r.OrderID); err != nil {
				return err
			}
			orders[r.OrderID] = o
		}
		p, _ := portal.ProductByID(o.Product)
		next := portal.RecipientReady
		if p.NeedsOrganization {
			org, ok := orgs[o.OrganizationID]
			if !ok {
				all, err := s.Store.OrgsForAccount(ctx, tx, o.AccountID)
				if err != nil {
					return err
				}
				for _, x := range all {
					orgs[x.ID] = x
				}
				org = orgs[o.OrganizationID]
				if domains[org.ID], err = s.Store.DomainsForOrg(ctx, tx, org.ID); err != nil {
					return err
				}
			}
			if !org.Current(now) {
				next = portal.RecipientAwaitingOrg
			}
		}
		if next == portal.RecipientReady {
			if p.MailboxValidation {
				ok, err := s.Validator.MailboxValidated(ctx, tx, o.AccountID, r.Email)
				if err != nil {
					return err
				}
				if !ok {
					next = portal.RecipientAwaitingMailbox
				}
			} else if !domainCurrent(domains[o.OrganizationID], r.Email, now) {
				next = portal.RecipientAwaitingDomain
			}
		}
		if next == portal.RecipientReady && r.CSR == "" {
			next = portal.RecipientAwaitingKeyGen
		}
		if next == r.Status {
			continue
		}
		if err := s.Store.SetRecipientStatus(ctx, tx, r.ID, next, ""); err != nil {
			return err
		}
		if next == portal.RecipientAwaitingKeyGen && s.KeyGen != nil {
			r.Status = next
			if p := links[r.ID]; p != nil {
				if err := s.KeyGen.(LinkPreparer).SendPrepared(ctx, tx, r, p); err != nil {
					return err
				}
				continue
			}
			if err := s.KeyGen.SendLink(ctx, tx, o, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// domainCurrent reports whether a current domain validation of the
// organization covers the address's domain (subdomains included).
func domainCurrent(domains []portal.Domain, email string, now time.Time) bool {
	ed := portal.EmailDomain(email)
	for _, d := range domains {
		if d.Current(now) && portal.DomainCovers(d.Name, ed) {
			return true
		}
	}
	return false
}

// issueReady asks the issuer for every ready recipient. Issuance is
// idempotent; a failure leaves the recipient ready for the scheduler's
// next sweep.
func (s *Service) issueReady(ctx context.Context, accountID int64) {
	if s.Issuer == nil {
		return
	}
	open, err := s.Store.OpenRecipients(ctx, nil, accountID)
	if err != nil {
		s.Log.Error("list ready recipients", "err", err)
		return
	}
	s.issue(ctx, open)
}

// issueReadyOf issues one order's ready recipients.
func (s *Service) issueReadyOf(ctx context.Context, orderID int64) {
	if s.Issuer == nil {
		return
	}
	open, err := s.Store.OpenRecipientsOfOrder(ctx, nil, orderID)
	if err != nil {
		s.Log.Error("list ready recipients", "err", err)
		return
	}
	s.issue(ctx, open)
}

func (s *Service) issue(ctx context.Context, open []portal.Recipient) {
	if b, ok := s.Issuer.(BatchIssuer); ok {
		var ready []int64
		for _, r := range open {
			if r.Status == portal.RecipientReady {
				ready = append(ready, r.ID)
			}
		}
		if len(ready) > 0 {
			b.IssueRecipients(ctx, ready)
		}
		return
	}
	for _, r := range open {
		if r.Status != portal.RecipientReady {
			continue
		}
		if err := s.Issuer.IssueRecipient(ctx, r.ID); err != nil {
			s.Log.Warn("issuance deferred", "recipient_id", r.ID, "err", err)
		}
	}
}

// Cancel cancels a pending order and releases its payment hold.
func (s *Service) Cancel(ctx context.Context, u portal.User, orderID int64) error {
	if _, err := s.Store.Order(ctx, nil, u.AccountID, orderID); err != nil {
		return err
	}
	return s.Store.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.Store.CancelOrder(ctx, tx, u.AccountID, orderID); err != nil {
			return err
		}
		return s.Billing.Release(ctx, tx, u.AccountID, orderID)
	})
}
