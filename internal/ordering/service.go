package ordering

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"certdesk/internal/portal"
)

// Store is what ordering needs from the database (implemented by store.DB).
type Store interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	GroupTx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error
	OrderIDByIdempotencyKey(ctx context.Context, q portal.Querier, accountID int64, key string) (int64, error)
	InsertOrder(ctx context.Context, tx *sql.Tx, o *portal.Order, idemKey string) error
	SetOrderPaymentRef(ctx context.Context, tx *sql.Tx, orderID int64, ref string) error
	Order(ctx context.Context, q portal.Querier, accountID, id int64) (portal.Order, error)
	OrderHead(ctx context.Context, q portal.Querier, id int64) (portal.Order, int, error)
	OpenRecipients(ctx context.Context, q portal.Querier, accountID int64) ([]portal.Recipient, error)
	OpenRecipientsOfOrder(ctx context.Context, q portal.Querier, orderID int64) ([]portal.Recipient, error)
	SetRecipientStatus(ctx context.Context, q portal.Querier, id int64, st portal.RecipientStatus, reason string) error
	CancelOrder(ctx context.Context, tx *sql.Tx, accountID, id int64) error
	OrgsForAccount(ctx context.Context, q portal.Querier, accountID int64) ([]portal.Organization, error)
	DomainsForOrg(ctx context.Context, q portal.Querier, orgID int64) ([]portal.Domain, error)
	EnqueueEmail(ctx context.Context, tx *sql.Tx, e portal.Email) (int64, error)
}

// Billing is the payment side (internal/billing).
type Billing interface {
	Quote(ctx context.Context, accountID int64, product portal.Product, recipients, days int) (perCert, total int64)
	DefaultMethod(ctx context.Context, accountID int64) portal.PaymentMethod
	Authorize(ctx context.Context, tx *sql.Tx, accountID, orderID int64, method portal.PaymentMethod, amount int64, card *Card) (string, error)
	Release(ctx context.Context, tx *sql.Tx, accountID, orderID int64) error
}

// CardHold is a card authorization made at the gateway before the order's
// transaction (billing.CardHold).
type CardHold struct {
	Ref    string
	Label  string
	Amount int64
}

// CardHolder is a Billing that authorizes cards at the gateway outside the
// database transaction and books the hold inside it (billing.Service via
// the wiring). Submit uses it for card payments, so the gateway's answer
// time never holds the single writer that concurrent submissions share.
type CardHolder interface {
	HoldCard(ctx context.Context, accountID, amount int64, card *Card) (CardHold, error)
	RecordCardHold(ctx context.Context, tx *sql.Tx, accountID, orderID int64, h CardHold) (string, error)
	ReleaseCardHold(ctx context.Context, h CardHold) error
}

// Validator starts validations "as part of the order" and tells whether a
// mailbox is validated (internal/validation).
type Validator interface {
	SubmitOrgForOrder(ctx context.Context, tx *sql.Tx, accountID, orgID, orderID int64) error
	StartDomainEmailForOrder(ctx context.Context, tx *sql.Tx, accountID, orgID int64, domain string, orderID int64, lang string) error
	StartMailboxForOrder(ctx context.Context, tx *sql.Tx, accountID int64, email string, orderID int64, lang string) error
	MailboxValidated(ctx context.Context, q portal.Querier, accountID int64, email string) (bool, error)
}

// Issuer issues a ready recipient's certificate (internal/ca pipeline).
// It must be idempotent: calling it twice issues once.
type Issuer interface {
	IssueRecipient(ctx context.Context, recipientID int64) error
}

// BatchIssuer issues many ready recipients with one intent and one
// completion transaction per batch (*Pipeline); Service uses it when the
// Issuer has it. It logs its own errors and returns how many it issued.
type BatchIssuer interface {
	IssueRecipients(ctx context.Context, ids []int64) int
}

// KeyGen sends a recipient without a CSR their KeyGen link.
type KeyGen interface {
	SendLink(ctx context.Context, tx *sql.Tx, order portal.Order, r portal.Recipient) error
}

// LinkPreparer is a KeyGen that can make a link (token and email) before
// the write transaction and store it inside it (*LinkService); Submit uses
// it so that the single writer does not render emails.
type LinkPreparer interface {
	PrepareLink(ctx context.Context, order portal.Order, r portal.Recipient) (*PreparedLink, error)
	SendPrepared(ctx context.Context, tx *sql.Tx, r portal.Recipient, p *PreparedLink) error
}

// Notifier renders order emails (internal/mail templates).
type Notifier interface {
	OrderConfirmation(lang string, o portal.Order, to string) portal.Email
}

// Service is the ordering orchestrator.
type Service struct {
	Store     Store
	Billing   Billing
	Validator Validator
	Issuer    Issuer
	KeyGen    KeyGen
	Notifier  Notifier
	ParseCSR  CSRParser
	Clock     portal.Clock
	Log       *slog.Logger
}

// Checked is a validated order ready to store.
type Checked struct {
	Order   portal.Order
	Product portal.Product
	// NewDomains are email domains that get email validation as part of the order.
	NewDomains         []string
	OrgNeedsValidation bool
	PerCert, Total     int64
	Plan               bool
}

// Check applies every order rule and returns all field errors at once.
// The same messages serve the form and the API.
func (s *Service) Check(ctx context.Context, u portal.User, in Input) (*Checked, error) {
	var fe portal.FieldErrors
	now := s.Clock.Now()
	p, ok := portal.ProductByID(in.Product)
	if !ok {
		fe.Add(FieldProduct, "order.product_invalid", "Choose a product.")
		return nil, fe
	}
	ch := &Checked{Product: p}
	o := &ch.Order
	o.AccountID, o.UserID, o.Product = u.AccountID, u.ID, p.ID
	o.PeriodStart = now
	o.AutoRenew = in.AutoRenew

	// Organization (not for Secure Email for Individual).
	var org *portal.Organization
	var orgDomains []portal.Domain
	if p.NeedsOrganization {
		orgs, err := s.Store.OrgsForAccount(ctx, nil, u.AccountID)
		if err != nil {
			return nil, err
		}
		for i := range orgs {
			if orgs[i].ID == in.OrganizationID {
				org = &orgs[i]
			}
		}
		if org == nil {
			fe.Add(FieldOrg, "order.org_required", "Choose the organization the certificates are for.")
		} else {
			o.OrganizationID = org.ID
			ch.OrgNeedsValidation = !org.Current(now)
			if org.Status == portal.OrgRejected {
				fe.Add(FieldOrg, "order.org_rejected", "This organization's validation was rejected. Choose another or contact support.")
			}
			if orgDomains, err = s.Store.DomainsForOrg(ctx, nil, org.ID); err != nil {
				return nil, err
			}
		}
	}

	switch in.SignatureHash {
	case portal.SHA256, portal.SHA384, portal.SHA512:
		o.SignatureHash = in.SignatureHash
	case "":
		o.SignatureHash = portal.SHA256
	default:
		fe.Add(FieldHash, "order.hash_invalid", "Choose SHA-256, SHA-384 or SHA-512.")
	}

	end, err := Period(now, in.Validity, in.CustomDate, in.CustomDays)
	if err != nil {
		fe = append(fe, portal.AsFieldErrors(err)...)
	} else {
		o.PeriodEnd = end
		ch.Plan = IsPlan(now, end)
	}

	// Recipients.
	if len(in.Recipients) == 0 {
		fe.Add(FieldRecipients, "order.recipients_required", "Add at least one recipient.")
	}
	if len(in.Recipients) > MaxRecipients {
		fe.Add(FieldRecipients, "order.recipients_too_many", "An order can hold at most 100 certificates.")
		in.Recipients = in.Recipients[:MaxRecipients]
	}
	seen := map[string]int{}
	newDomains := map[string]bool{}
	for i, ri := range in.Recipients {
		r := portal.Recipient{CNFromName: ri.CNFromName}
		email, ok := portal.NormalizeEmail(ri.Email)
		if !ok {
			fe.Add(RecipientField(i, "email"), "order.email_invalid", "Enter a valid email address, like name@example.com.")
		} else if j, dup := seen[email]; dup {
			fe = append(fe, &portal.Error{Code: portal.EInvalid, Field: RecipientField(i, "email"), Key: "order.email_duplicate",
				Message: fmt.Sprintf("This address is already recipient %d of this order.", j+1), Data: map[string]any{"N": j + 1}})
		} else {
			seen[email] = i
			r.Email = email
			if msg := s.domainRule(p, org, orgDomains, email, newDomains); msg != nil {
				msg.Field = RecipientField(i, "email")
				fe = append(fe, msg)
			}
		}
		name := strings.TrimSpace(ri.Name)
		if p.PersonalName && !ri.CNFromName {
			// A sponsor-validated certificate names the person (SBR 1.3
			// "Sponsor-validated"; zlint e_invalid_individual_identity), so
			// the recipient's name is the common name.
			fe.Add(RecipientField(i, "cn"), "order.cn_name_required", "This product puts the recipient's name in the certificate: choose Name and enter it.")
		}
		if ri.CNFromName {
			switch {
			case !p.PersonalName:
				fe.Add(RecipientField(i, "cn"), "order.cn_name_not_allowed", "This product puts the email address in the common name; choose Email.")
			case name == "":
				fe.Add(RecipientField(i, "name"), "order.name_required", "Enter the recipient's name.")
			case len(name) > 64:
				// X.520 ub-common-name: 64 characters
				fe.Add(RecipientField(i, "name"), "order.name_too_long", "Use at most 64 characters.")
			case strings.ContainsAny(name, "\x00\r\n<>"):
				fe.Add(RecipientField(i, "name"), "order.name_invalid", "The name contains characters that are not allowed.")
			}
			r.CommonName = name
		} else {
			r.CommonName = r.Email
		}
		if ri.HasCSR {
			csr := strings.TrimSpace(ri.CSR)
			if _, err := s.ParseCSR([]byte(csr)); err != nil {
				var pe *portal.Error
				if errors.As(err, &pe) {
					cp := *pe
					cp.Field = RecipientField(i, "csr")
					fe = append(fe, &cp)
				} else {
					fe.Add(RecipientField(i, "csr"), "csr.parse", "This is not a valid certificate signing request.")
				}
			} else {
				r.CSR = csr
			}
		}
		o.Recipients = append(o.Recipients, r)
	}
	for d := range newDomains {
		ch.NewDomains = append(ch.NewDomains, d)
	}

	if add, err := ParseAdditionalEmails(in.AdditionalEmails); err != nil {
		fe = append(fe, portal.AsFieldErrors(err)...)
	} else {
		o.AdditionalEmails = add
	}

	switch in.PaymentMethod {
	case portal.PayCard, portal.PayContract, portal.PayBalance:
		o.PaymentMethod = in.PaymentMethod
	default:
		fe.Add(FieldPayment, "order.payment_invalid", "Choose a payment method.")
	}
	if !in.Agreed {
		fe.Add(FieldAgree, "order.agree_required", "Agree to the Certificate Services Agreement to submit the order.")
	}
	if len(fe) > 0 {
		return ch, fe
	}
	o.AgreementVersion, o.AgreedAt = AgreementVersion, now
	ch.PerCert, ch.Total = s.Billing.Quote(ctx, u.AccountID, p, len(o.Recipients), Days(now, o.PeriodEnd))
	o.AmountCents = ch.Total
	return ch, nil
}

// domainRule checks that an email's domain may be used: for mailbox
// validation any address (SBR 3.2.2.2); otherwise a domain of the
// selected organization, validated, or new (then validated by email as
// part of the order). Public mail domains only when the organization
// prevalidated them.
func (s *Service) domainRule(p portal.Product, org *portal.Organization, domains []portal.Domain, email string, newDomains map[string]bool) *portal.Error {
	if p.MailboxValidation {
		return nil
	}
	if org == nil {
		return nil // the organization error is shown already
	}
	ed := portal.EmailDomain(email)
	for _, d := range domains {
		if portal.DomainCovers(d.Name, ed) {
			if portal.IsPublicMailDomain(ed) && d.OrderID != 0 {
				break
			}
			return nil
		}
	}
	if portal.IsPublicMailDomain(ed) {
		return &portal.Error{Code: portal.EInvalid, Key: "order.public_mail",
			Message: fmt.Sprintf("%s is a public mail provider. Order Secure Email for Individual for this address, or prevalidate the domain for your organization first.", ed),
			Data:    map[string]any{"Domain": ed}}
	}
	newDomains[ed] = true
	return nil
}
