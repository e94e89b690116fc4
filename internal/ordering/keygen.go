package ordering

// KeyGen links (issue 6): a recipient whose order came without a CSR gets,
// once every validation of theirs is complete, an emailed single-use link
// to the KeyGen page. The page makes the key pair and the CSR in the
// browser and sends only the CSR here (Exchange); the certificate and its
// chain go back to the page, which builds the PKCS#12.
//
// A link is a random value of 160 bits (portal.NewToken; at least 128 bits
// as DESIGN.md asks of every credential), stored as its SHA-256 only. It
// is usable while it is
//   - not expired: portal.KeyGenLinkLifetime (30 days) after it was sent;
//   - not replaced: sending a new link to the recipient kills the old one;
//   - not spent: a certificate was issued through it;
//   - for a recipient still awaiting key generation in an order that is
//     not cancelled.

import (
	"context"
	"crypto/rsa"
	"database/sql"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"certdesk/internal/ca"
	"certdesk/internal/mail"
	"certdesk/internal/portal"
)

// KindKeyGenLink is the mail kind of the KeyGen link email.
const KindKeyGenLink = "keygen_link"

func init() {
	mail.Register(KindKeyGenLink, mail.Template{
		Subject: "keygen.mail.subject",
		Body:    []string{"keygen.mail.greeting", "keygen.mail.body", "keygen.mail.expires", "keygen.mail.warning"},
		Links:   []mail.TemplateLink{{Label: "keygen.mail.open", Field: "URL"}},
	})
}

// KeyGenRSABits is the only key size KeyGen makes, and so the only one its
// exchange accepts (the page promises an RSA-2048 key; SBR 6.1.5 allows
// larger ones for uploaded CSRs, which go through the order form).
const KeyGenRSABits = 2048

// KeyGenLink is one emailed link. The token itself is never stored.
type KeyGenLink struct {
	ID            int64
	RecipientID   int64
	AccountID     int64
	TokenHash     string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	ReplacedAt    time.Time // zero while no newer link was sent
	SpentAt       time.Time // zero while no certificate was issued through it
	CertificateID int64     // the certificate issued through it, 0 when none
	SentBy        string    // "system" (order advanced) or the requestor's email
}

// Link states, also the last part of the error keys ("keygen.link.<state>").
const (
	LinkUsable   = "usable"
	LinkUnknown  = "unknown"
	LinkExpired  = "expired"
	LinkSpent    = "spent"
	LinkReplaced = "replaced"
	LinkClosed   = "closed" // the recipient no longer awaits key generation (order cancelled, held, issued otherwise)
	// LinkOrgExpired: the order's organization validation is no longer
	// current (SBR 4.2.1), so no certificate can be issued now; the link
	// works again once the organization is validated again.
	LinkOrgExpired = "org_expired"
)

// State of the link at now, from its own record only.
func (l KeyGenLink) State(now time.Time) string {
	switch {
	case !l.SpentAt.IsZero():
		return LinkSpent
	case !l.ReplacedAt.IsZero():
		return LinkReplaced
	case !now.Before(l.ExpiresAt):
		return LinkExpired
	}
	return LinkUsable
}

// KeyGenStore is what the link service needs from the database (store.DB).
type KeyGenStore interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	// InsertKeyGenLink stores a new link inside tx and marks every other
	// unspent, unreplaced link of the same recipient replaced at l.CreatedAt.
	InsertKeyGenLink(ctx context.Context, tx *sql.Tx, l *KeyGenLink) error
	KeyGenLinkByHash(ctx context.Context, q portal.Querier, hash string) (KeyGenLink, error)
	LatestKeyGenLink(ctx context.Context, q portal.Querier, recipientID int64) (KeyGenLink, error)
	// SpendKeyGenLink marks a link spent with the certificate issued
	// through it; false when it was already spent.
	SpendKeyGenLink(ctx context.Context, q portal.Querier, id, certificateID int64, at time.Time) (bool, error)
	Recipient(ctx context.Context, q portal.Querier, id int64) (portal.Recipient, error)
	Order(ctx context.Context, q portal.Querier, accountID, id int64) (portal.Order, error)
	OrderHead(ctx context.Context, q portal.Querier, id int64) (portal.Order, int, error)
	OrgsForAccount(ctx context.Context, q portal.Querier, accountID int64) ([]portal.Organization, error)
	UserByID(ctx context.Context, id int64) (portal.User, error)
	EnqueueEmail(ctx context.Context, tx *sql.Tx, e portal.Email) (int64, error)
}

// Exchanger issues the certificate for a CSR made by KeyGen and revokes a
// certificate issued through a link whose key was lost (*Pipeline).
type Exchanger interface {
	IssueWithCSR(ctx context.Context, recipientID int64, csrPEM string) (*IssuedCert, error)
	RevokeUnused(ctx context.Context, recipientID int64, why string) error
}

var _ Exchanger = (*Pipeline)(nil)

// LinkService sends KeyGen links and runs the CSR exchange. It implements
// KeyGen (Service.Advance calls SendLink).
type LinkService struct {
	Store     KeyGenStore
	Exchanger Exchanger
	Clock     portal.Clock
	// BaseURL of the portal; links are BaseURL + "/keygen/" + token.
	BaseURL string
	Log     *slog.Logger
	// Mail is nudged after a commit that queued email (may be nil).
	Mail interface{ Wake() }

	langMu sync.Mutex
	langs  map[int64]cachedLang
}

var _ KeyGen = (*LinkService)(nil)

func (s *LinkService) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

func (s *LinkService) wake() {
	if s.Mail != nil {
		s.Mail.Wake()
	}
}

// linkError is a refusal of a link; its key says which page to show.
func linkError(state string) *portal.Error {
	code := portal.EConflict
	msg := map[string]string{
		LinkUnknown:  "This KeyGen link is not valid. Ask the person who ordered your certificate to send a new link.",
		LinkExpired:  "This KeyGen link has expired. Ask the person who ordered your certificate to send a new link.",
		LinkSpent:    "A certificate was already made with this KeyGen link. If you did not save the file, ask the person who ordered your certificate to send a new link.",
		LinkReplaced: "A newer KeyGen link was sent to you; this one no longer works. Use the link in the newest email.",
		LinkClosed:   "This certificate no longer waits for a key. Ask the person who ordered your certificate for help.",
		LinkOrgExpired: "The validation of the organization has expired, so your certificate cannot be made now. " +
			"This link works again once the organization is validated again.",
	}[state]
	if state == LinkUnknown {
		code = portal.ENotFound
	}
	return &portal.Error{Code: code, Key: "keygen.link." + state, Message: msg}
}

// LinkState returns the state a link refusal stands for ("" for any other
// error): unknown, expired, spent, replaced, closed or org_expired.
func LinkState(err error) string {
	var pe *portal.Error
	if errors.As(err, &pe) && strings.HasPrefix(pe.Key, "keygen.link.") {
		return strings.TrimPrefix(pe.Key, "keygen.link.")
	}
	return ""
}

// SendLinkTo sends recipient id a new link when it awaits key generation
// (after CA staff released a KeyGen issuance that was held: its key is
// gone, ReleaseHeld sent it back to key generation); sent is false when it
// waits for something else.
func (s *LinkService) SendLinkTo(ctx context.Context, recipientID int64) (sent bool, err error) {
	r, err := s.Store.Recipient(ctx, nil, recipientID)
	if err != nil || r.Status != portal.RecipientAwaitingKeyGen {
		return false, err
	}
	o, _, err := s.Store.OrderHead(ctx, nil, r.OrderID)
	if err != nil {
		return false, err
	}
	p, err := s.PrepareLink(ctx, o, r)
	if err != nil {
		return false, err
	}
	p.by = "system"
	if err := s.Store.Tx(ctx, func(tx *sql.Tx) error { return s.SendPrepared(ctx, tx, r, p) }); err != nil {
		return false, err
	}
	s.wake()
	return true, nil
}

// SendLink makes a new link for a recipient awaiting key generation,
// kills the older ones and queues the email to the recipient's address
// in the order's language (the requestor's), inside tx.
func (s *LinkService) SendLink(ctx context.Context, tx *sql.Tx, o portal.Order, r portal.Recipient) error {
	return s.send(ctx, tx, o, r, "system")
}

func (s *LinkService) send(ctx context.Context, tx *sql.Tx, o portal.Order, r portal.Recipient, by string) error {
	p, err := s.PrepareLink(ctx, o, r)
	if err != nil {
		return err
	}
	p.by = by
	return s.SendPrepared(ctx, tx, r, p)
}

// PreparedLink is a KeyGen link made ahead of the write transaction: its
// token's hash, its times and its rendered email. Order submission
// prepares one per recipient without a CSR BEFORE its transaction, so the
// single database writer only inserts rows (docs/BENCHMARKS.md, "Orders
// API"); a prepared link that turns out not to be needed (the recipient
// still waits for a validation) is dropped unused. The raw token exists
// only inside the email.
type PreparedLink struct {
	hash               string
	created, expiresAt time.Time
	email              portal.Email
	by                 string
}

// PrepareLink makes a link's token and renders its email for recipient r
// of order o (r.ID and o.ID may still be 0): in the order's language, to
// r's address.
func (s *LinkService) PrepareLink(ctx context.Context, o portal.Order, r portal.Recipient) (*PreparedLink, error) {
	if s.BaseURL == "" {
		return nil, errors.New("keygen: no base URL for links")
	}
	now := s.Clock.Now()
	tok := portal.NewToken()
	p := &PreparedLink{hash: portal.HashToken(tok), created: now, expiresAt: now.Add(portal.KeyGenLinkLifetime), by: "system"}
	lang := s.requestorLang(ctx, o.UserID, now)
	data := map[string]any{
		"Email":   r.Email,
		"Name":    r.CommonName,
		"Product": string(o.Product),
		"Expires": p.expiresAt.UTC().Format("2006-01-02 15:04 UTC"),
		"URL":     strings.TrimRight(s.BaseURL, "/") + "/keygen/" + url.PathEscape(tok),
	}
	if !r.CNFromName {
		data["Name"] = r.Email
	}
	e, err := mail.Render(lang, KindKeyGenLink, data)
	if err != nil {
		return nil, err
	}
	e.To = r.Email
	p.email = e
	return p, nil
}

// SendPrepared stores a prepared link for recipient r (which must have its
// ID now), kills r's older links and queues the email, inside tx.
func (s *LinkService) SendPrepared(ctx context.Context, tx *sql.Tx, r portal.Recipient, p *PreparedLink) error {
	l := KeyGenLink{RecipientID: r.ID, AccountID: r.AccountID, TokenHash: p.hash, CreatedAt: p.created,
		ExpiresAt: p.expiresAt, SentBy: p.by}
	if err := s.Store.InsertKeyGenLink(ctx, tx, &l); err != nil {
		return err
	}
	_, err := s.Store.EnqueueEmail(ctx, tx, p.email)
	return err
}

// requestorLang is the order's language: its requestor's. An order of
// many recipients sends many links in one transaction, so the answer is
// kept for a few seconds (docs/BENCHMARKS.md, "Orders API").
func (s *LinkService) requestorLang(ctx context.Context, userID int64, now time.Time) string {
	s.langMu.Lock()
	if e, ok := s.langs[userID]; ok && now.Sub(e.at) < langCacheFor && !now.Before(e.at) {
		s.langMu.Unlock()
		return e.lang
	}
	s.langMu.Unlock()
	u, err := s.Store.UserByID(ctx, userID)
	if err != nil {
		return ""
	}
	s.langMu.Lock()
	if s.langs == nil || len(s.langs) > 1000 {
		s.langs = map[int64]cachedLang{}
	}
	s.langs[userID] = cachedLang{lang: u.Lang, at: now}
	s.langMu.Unlock()
	return u.Lang
}

const langCacheFor = 10 * time.Second

type cachedLang struct {
	lang string
	at   time.Time
}

// LinkInfo is what the KeyGen page shows about a usable link.
type LinkInfo struct {
	Link      KeyGenLink
	Recipient portal.Recipient
	Order     portal.Order
	OrgName   string // "" for products without an organization
}

// Open checks a link and returns what the page shows. A refusal is a
// *portal.Error with key "keygen.link.<state>" (LinkState).
func (s *LinkService) Open(ctx context.Context, token string) (*LinkInfo, error) {
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 128 {
		return nil, linkError(LinkUnknown)
	}
	l, err := s.Store.KeyGenLinkByHash(ctx, nil, portal.HashToken(token))
	if portal.ErrorCode(err) == portal.ENotFound {
		return nil, linkError(LinkUnknown)
	}
	if err != nil {
		return nil, err
	}
	if st := l.State(s.Clock.Now()); st != LinkUsable {
		return nil, linkError(st)
	}
	r, err := s.Store.Recipient(ctx, nil, l.RecipientID)
	if err != nil {
		return nil, err
	}
	o, _, err := s.Store.OrderHead(ctx, nil, r.OrderID) // without the other recipients: one page of an order of 1,000 read them all
	if err != nil {
		return nil, err
	}
	if o.Status == portal.OrderCancelled || r.Status != portal.RecipientAwaitingKeyGen {
		return nil, linkError(LinkClosed)
	}
	info := &LinkInfo{Link: l, Recipient: r, Order: o}
	if o.OrganizationID != 0 {
		orgs, err := s.Store.OrgsForAccount(ctx, nil, o.AccountID)
		if err != nil {
			return nil, err
		}
		for _, org := range orgs {
			if org.ID != o.OrganizationID {
				continue
			}
			info.OrgName = org.LegalName
			// SBR 4.2.1: issuance needs the organization's validation to be
			// current (Pipeline.load defers it otherwise). Refused here, so
			// the page does not make a key whose CSR would be stored and
			// certified later, after the page had dropped the key.
			if p, ok := portal.ProductByID(o.Product); ok && p.NeedsOrganization && !org.Current(s.Clock.Now()) {
				return nil, linkError(LinkOrgExpired)
			}
		}
	}
	return info, nil
}

// CheckKeyGenCSR parses a CSR under the CA's intake policy (ca.ParseCSR:
// PEM, one CSR, proof of possession, no private key, no weak key) and
// then requires exactly what KeyGen makes: RSA with a 2048-bit modulus.
func CheckKeyGenCSR(csrPEM string) error {
	pub, err := ca.ParseCSR([]byte(csrPEM))
	if err != nil {
		return err
	}
	if k, ok := pub.(*rsa.PublicKey); !ok || k.N.BitLen() != KeyGenRSABits {
		return &portal.Error{Code: portal.EInvalid, Field: "csr", Key: "keygen.csr_not_rsa2048",
			Message: "KeyGen makes RSA-2048 keys; this request has another key."}
	}
	return nil
}

// Exchange takes the CSR the KeyGen page made for a usable link, issues
// the certificate and spends the link. The CSR is checked before anything
// changes (CheckKeyGenCSR). A second exchange of the same link is refused
// (spent), also when two run at once: the pipeline stores a CSR only on a
// recipient that still awaits key generation.
func (s *LinkService) Exchange(ctx context.Context, token, csrPEM string) (*IssuedCert, error) {
	info, err := s.Open(ctx, token)
	if err != nil {
		return nil, err
	}
	if err := CheckKeyGenCSR(csrPEM); err != nil {
		return nil, err
	}
	if s.Exchanger == nil {
		return nil, errors.New("keygen: no issuance pipeline wired")
	}
	cert, err := s.Exchanger.IssueWithCSR(ctx, info.Recipient.ID, strings.TrimSpace(csrPEM))
	if err != nil {
		if pe := (*portal.Error)(nil); errors.As(err, &pe) && pe.Key == "certs.already_issued" {
			return nil, linkError(LinkSpent)
		}
		return nil, err
	}
	s.wake() // the "certificate issued" emails
	ok, err := s.Store.SpendKeyGenLink(ctx, nil, info.Link.ID, cert.CertificateID, s.Clock.Now())
	if err != nil || !ok {
		// The recipient is issued now, so the link is refused anyway
		// (closed); the record just lacks the certificate.
		s.log().Error("keygen: link not marked spent", "link_id", info.Link.ID, "certificate_id", cert.CertificateID, "err", err)
	}
	s.log().Info("keygen: certificate issued through a link", "link_id", info.Link.ID, "recipient_id", info.Recipient.ID,
		"certificate_id", cert.CertificateID)
	return cert, nil
}

// Resend is the requestor's "Send a new KeyGen link" for a recipient of
// one of the account's orders: a new link, the old one dead. When a
// certificate was already issued through the recipient's last link, its
// key existed only in the recipient's browser and the .p12 is never seen
// by the server, so a new link means that key is lost: the certificate is
// revoked as superseded (RevokeUnused) and the recipient awaits key
// generation again; the new certificate is not charged again. A recipient
// whose certificate came from an uploaded CSR, or who waits for anything
// else, is a conflict. by is the requestor's email (recorded on the link).
func (s *LinkService) Resend(ctx context.Context, accountID, orderID, recipientID int64, by string) error {
	o, err := s.Store.Order(ctx, nil, accountID, orderID)
	if err != nil {
		return err
	}
	var r *portal.Recipient
	for i := range o.Recipients {
		if o.Recipients[i].ID == recipientID {
			r = &o.Recipients[i]
		}
	}
	if r == nil {
		return portal.Errorf(portal.ENotFound, "recipient not found")
	}
	if o.Status == portal.OrderCancelled {
		return &portal.Error{Code: portal.EConflict, Key: "keygen.resend.cancelled", Message: "This order was cancelled."}
	}
	switch r.Status {
	case portal.RecipientAwaitingKeyGen:
	case portal.RecipientIssued:
		last, err := s.Store.LatestKeyGenLink(ctx, nil, r.ID)
		if portal.ErrorCode(err) == portal.ENotFound || (err == nil && (last.CertificateID == 0 || last.CertificateID != r.CertificateID)) {
			return &portal.Error{Code: portal.EConflict, Key: "keygen.resend.not_keygen",
				Message: "This certificate was not made with KeyGen, so a KeyGen link cannot replace it."}
		}
		if err != nil {
			return err
		}
		if s.Exchanger == nil {
			return errors.New("keygen: no issuance pipeline wired")
		}
		if err := s.Exchanger.RevokeUnused(ctx, r.ID, "KeyGen: the requestor sent a new link; the key of the certificate issued through the old link stayed in the recipient's browser"); err != nil {
			return err
		}
	default:
		return &portal.Error{Code: portal.EConflict, Key: "keygen.resend.not_waiting",
			Message: "This recipient is not waiting for key generation."}
	}
	err = s.Store.Tx(ctx, func(tx *sql.Tx) error {
		cur, err := s.Store.Recipient(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if cur.Status != portal.RecipientAwaitingKeyGen {
			return &portal.Error{Code: portal.EConflict, Key: "keygen.resend.not_waiting",
				Message: "This recipient is not waiting for key generation."}
		}
		return s.send(ctx, tx, o, cur, by)
	})
	if err != nil {
		return err
	}
	s.wake()
	return nil
}
