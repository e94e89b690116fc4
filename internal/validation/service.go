package validation

// The validation service: organizations (SBR 3.2.3), domains (SBR 3.2.2.1
// with TLS BR 3.2.2.4), mailboxes (SBR 3.2.2.2) and CAA issuemail
// (SBR 4.2.2.1) on top of the checking core in this package. It keeps
// state through the Store interface (implemented by certdesk/store.DB),
// writes emails through the outbox in the same transaction as the change,
// records every action in the audit log and asks the ordering service to
// move waiting recipients on when a validation completes.

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"time"

	"certdesk/internal/portal"
)

// OrgCodeLength is the number of characters of a voicemail verification
// code (grouped XXXX-XXXX-XXXX-XXXX, about 72 bits from crypto/rand). It is
// read aloud on a voicemail, so it is shorter than a 128-bit random value;
// what protects it is that only its hash is stored, it expires after
// portal.OrgCodeLifetime (7 days), it is single-use and at most
// MaxOrgCodeAttempts wrong entries are accepted before it is void.
const OrgCodeLength = 16

// MaxOrgCodeAttempts is how many wrong codes an organization may enter
// before its current code is void and the agent must call again.
const MaxOrgCodeAttempts = 5

// Audit actions written by the service.
const (
	AuditOrgCreated       = "org.created"
	AuditOrgUpdated       = "org.updated"
	AuditOrgSubmitted     = "org.submitted"
	AuditOrgCallCompleted = "org.call_completed"
	AuditOrgMessageLeft   = "org.message_left"
	AuditOrgRejected      = "org.rejected"
	AuditOrgCodeWrong     = "org.code_wrong"
	AuditOrgCodeAccepted  = "org.code_accepted"
	AuditDomainAdded      = "domain.added"
	AuditDomainMethod     = "domain.method_changed"
	AuditDomainCheck      = "domain.check"
	AuditDomainValidated  = "domain.validated"
	AuditDomainEmailSent  = "domain.email_sent"
	AuditMailboxSent      = "mailbox.link_sent"
	AuditMailboxConfirmed = "mailbox.confirmed"
	AuditCAARefused       = "caa.refused"
)

// Mail kinds (portal.Email.Kind) sent by the service.
const (
	KindOrgSubmitted   = "org_call_notice"
	KindOrgMessageLeft = "org_message_left"
	KindOrgRejected    = "org_rejected"
	KindOrgValidated   = "org_validated"
	KindDomainApproval = "domain_email_approval"
	KindMailboxConfirm = "mailbox_confirm"
)

// Actor is who does something: a signed-in user (UserID, Email) or an
// anonymous visitor of an email link (IP only).
type Actor struct {
	UserID int64
	Email  string
	IP     string
}

// AuditEvent is one audit-log line (who, what, when, from where); the
// store adds the time.
type AuditEvent struct {
	ActorID    int64
	Actor      string
	IP         string
	Action     string
	ObjectType string
	ObjectID   int64
	AccountID  int64
	Detail     string
}

// OrgCode is a voicemail verification code; only its hash is stored.
type OrgCode struct {
	ID             int64
	OrganizationID int64
	Hash           string
	CreatedBy      string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	UsedAt         time.Time
	KilledAt       time.Time
	FailedAttempts int
}

// Live reports whether the code can still be entered at now.
func (c OrgCode) Live(now time.Time) bool {
	return c.ID != 0 && c.UsedAt.IsZero() && c.KilledAt.IsZero() && now.Before(c.ExpiresAt) &&
		c.FailedAttempts < MaxOrgCodeAttempts
}

// EmailToken is one approval link of the constructed-email method, sent to
// one address (TLS BR 3.2.2.4.4: a unique random value per email).
type EmailToken struct {
	ID        int64
	DomainID  int64
	Email     string
	Hash      string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
	KilledAt  time.Time
}

// MailboxToken is one mailbox confirmation link (SBR 3.2.2.2).
type MailboxToken struct {
	ID          int64
	AccountID   int64
	OrderID     int64
	Email       string
	Hash        string
	Lang        string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	UsedAt      time.Time
	KilledAt    time.Time
	ValidatedAt time.Time
}

// CheckRecord is the last "Check now" outcome of a domain.
type CheckRecord struct {
	At       time.Time
	OK       bool
	Detail   string
	Found    []string
	Expected string
}

// DomainRecord is a domain with what the service keeps beside it.
type DomainRecord struct {
	portal.Domain
	// ValidationMethod names the method and BR version that validated the
	// domain (SBR 3.2.2: the record of the method used).
	ValidationMethod string
	Lang             string
	LastCheck        CheckRecord
}

// QueueItem is a pending organization as the validation agent sees it.
type QueueItem struct {
	Org         portal.Organization
	AccountName string
	Code        OrgCode // the latest code (ID 0 when none)
}

// Store is what the service needs from the database (store.DB).
type Store interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	EnqueueEmail(ctx context.Context, tx *sql.Tx, e portal.Email) (int64, error)
	RecordAudit(ctx context.Context, q portal.Querier, e AuditEvent) error
	AccountByID(ctx context.Context, id int64) (portal.Account, error)

	InsertOrg(ctx context.Context, q portal.Querier, o *portal.Organization, lang string) error
	UpdateOrgDetails(ctx context.Context, q portal.Querier, o portal.Organization) error
	// Org returns an organization of the account; accountID 0 means any
	// account (CA staff). Another account's organization is ENotFound.
	Org(ctx context.Context, q portal.Querier, accountID, id int64) (portal.Organization, error)
	OrgLang(ctx context.Context, q portal.Querier, id int64) (string, error)
	ListOrgs(ctx context.Context, q portal.Querier, accountID int64) ([]portal.Organization, error)
	PendingOrgs(ctx context.Context, q portal.Querier) ([]portal.Organization, error)
	SetOrgPending(ctx context.Context, q portal.Querier, id int64, at time.Time, orderID int64, lang string) error
	SetOrgValidated(ctx context.Context, q portal.Querier, id int64, at, expires time.Time, by, notes string) error
	SetOrgRejected(ctx context.Context, q portal.Querier, id int64, reason, by, notes string) error

	InsertOrgCode(ctx context.Context, q portal.Querier, c *OrgCode) error
	LatestOrgCode(ctx context.Context, q portal.Querier, orgID int64) (OrgCode, error)
	AddOrgCodeFailure(ctx context.Context, q portal.Querier, id int64) error
	UseOrgCode(ctx context.Context, q portal.Querier, id int64, at time.Time) error
	KillOrgCodes(ctx context.Context, q portal.Querier, orgID int64, at time.Time) error

	InsertDomain(ctx context.Context, q portal.Querier, d *portal.Domain, lang string) error
	// Domain returns a domain of the account; accountID 0 means any.
	Domain(ctx context.Context, q portal.Querier, accountID, id int64) (DomainRecord, error)
	DomainByName(ctx context.Context, q portal.Querier, orgID int64, name string) (DomainRecord, error)
	ListDomains(ctx context.Context, q portal.Querier, accountID int64) ([]DomainRecord, error)
	SetDomainMethod(ctx context.Context, q portal.Querier, id int64, m portal.DCVMethod, value string, valueExpires time.Time, lang string) error
	SetDomainValidated(ctx context.Context, q portal.Querier, id int64, at, expires time.Time, method string) error
	SetDomainCheck(ctx context.Context, q portal.Querier, id int64, c CheckRecord) error
	InsertEmailToken(ctx context.Context, q portal.Querier, t *EmailToken) error
	KillEmailTokens(ctx context.Context, q portal.Querier, domainID int64, at time.Time) error
	LiveEmailTokens(ctx context.Context, q portal.Querier, domainID int64, now time.Time) (int, error)
	EmailTokenByHash(ctx context.Context, q portal.Querier, hash string) (EmailToken, error)
	UseEmailToken(ctx context.Context, q portal.Querier, id int64, at time.Time) error

	InsertMailboxToken(ctx context.Context, q portal.Querier, t *MailboxToken) error
	MailboxTokenByHash(ctx context.Context, q portal.Querier, hash string) (MailboxToken, error)
	LatestMailboxToken(ctx context.Context, q portal.Querier, accountID int64, email string) (MailboxToken, error)
	UseMailboxToken(ctx context.Context, q portal.Querier, id int64, at time.Time) error
	LastMailboxValidation(ctx context.Context, q portal.Querier, accountID int64, email string) (time.Time, error)
}

// Advancer moves an account's waiting recipients on after a validation
// completed (ordering.Service.Advance).
type Advancer interface {
	Advance(ctx context.Context, accountID int64) error
}

// MailLink is a call to action in an email: Label is a catalogue key.
type MailLink struct {
	Label string
	URL   string
}

// Composer renders an email from catalogue keys in a language
// (internal/mail.Compose, adapted in cmd/certdesk).
type Composer func(lang, subjectKey string, bodyKeys []string, data map[string]any, links []MailLink) (portal.Email, error)

// Service is the validation service. Store, Checker, Clock and Compose are
// required; Limiter defaults to NewLimiter(0, 0, 0); Advancer and Log may
// be nil.
type Service struct {
	Store    Store
	Checker  *Checker
	Limiter  *Limiter
	Clock    portal.Clock
	Compose  Composer
	Advancer Advancer
	Log      *slog.Logger
	// BaseURL is the portal's public URL, for links in emails.
	BaseURL string
	// CallbackPhone is the CA's number left on a voicemail.
	CallbackPhone string
}

func (s *Service) now() time.Time { return s.Clock.Now().UTC() }

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

func (s *Service) limiter() *Limiter {
	if s.Limiter == nil {
		s.Limiter = NewLimiter(0, 0, 0)
	}
	return s.Limiter
}

func (s *Service) link(path string) string { return strings.TrimSuffix(s.BaseURL, "/") + path }

// advance asks ordering to move the account's recipients on; a failure is
// logged (the scheduler retries), not returned: the validation itself is
// committed.
func (s *Service) advance(ctx context.Context, accountID int64) {
	if s.Advancer == nil || accountID == 0 {
		return
	}
	if err := s.Advancer.Advance(ctx, accountID); err != nil {
		s.log().Warn("advance after validation", "account_id", accountID, "err", err)
	}
}

func (s *Service) audit(ctx context.Context, q portal.Querier, a Actor, action, objType string, objID, accountID int64, detail string) error {
	return s.Store.RecordAudit(ctx, q, AuditEvent{ActorID: a.UserID, Actor: a.Email, IP: a.IP, Action: action,
		ObjectType: objType, ObjectID: objID, AccountID: accountID, Detail: detail})
}

// mail composes and enqueues one email inside tx.
func (s *Service) mail(ctx context.Context, tx *sql.Tx, lang, kind, to, subject string, body []string, data map[string]any, links []MailLink) error {
	e, err := s.Compose(lang, subject, body, data, links)
	if err != nil {
		return err
	}
	e.To, e.Kind = to, kind
	_, err = s.Store.EnqueueEmail(ctx, tx, e)
	return err
}

// tokenHash is the stored form of a link token: hex SHA-256.
func tokenHash(token string) string { return portal.HashToken(strings.TrimSpace(token)) }

// Errors of email links, with translation keys for the public pages.
var (
	ErrLinkUnknown = &portal.Error{Code: portal.ENotFound, Key: "verify.link_unknown", Message: "This link is not valid. Check that you copied all of it."}
	ErrLinkUsed    = &portal.Error{Code: portal.EConflict, Key: "verify.link_used", Message: "This link has already been used. Each link works once."}
	ErrLinkExpired = &portal.Error{Code: portal.EConflict, Key: "verify.link_expired", Message: "This link has expired. Ask for a new one."}
	ErrLinkKilled  = &portal.Error{Code: portal.EConflict, Key: "verify.link_replaced", Message: "A newer link was sent; this one no longer works. Use the newest email."}
)
