package ordering

// The issuance pipeline: from a ready recipient to a delivered
// certificate, crash-safe and idempotent (issue 5, points 4, 5, 7, 8).
//
//  1. Load the recipient (skip unless 'ready'), its order, organization and
//     requestor; parse the CSR under the CA's intake policy.
//  2. CAA issuemail for the address's domain (SBR 4.2.2.1, RFC 9495). A
//     refusal holds the recipient with the reason; a DNS failure leaves it
//     ready for the next sweep (never issue on a failed lookup).
//  3. Intent, one transaction: a certificates row 'issuing' with a fresh
//     128-bit serial, BEFORE the CA key signs. The partial unique index
//     certificates_live allows one live row per recipient and plan period,
//     so of any number of concurrent attempts exactly one gets here; the
//     others return nil ("already in progress or issued").
//  4. Sign: ca.Authority.Issue lints first (SBR 4.3.1.2). A *ca.LintError
//     means nothing was signed: the row becomes 'failed' with the lint names
//     (CA staff see them), the recipient 'held' with "issuance held for
//     review".
//  5. Completion, ONE transaction: the row 'issued' with DER, subject,
//     addresses, SHA-256 fingerprint, validity and profile; the recipient
//     'issued' with its certificate; billing.Settle (card capture, contract
//     usage or balance debit); the outbox emails (rendered before, outside
//     the transaction); the order completed when every recipient is issued.
//
// IssueBatch (issue_batch.go) runs these steps for many recipients with
// ONE intent and ONE completion transaction and signs in parallel between
// them; Issue is a batch of one.
//
// Crash recovery (Recover, run at start and by the scheduler): a row still
// 'issuing' after StaleAfter (one minute) belongs to an attempt that died
// between steps 3 and 5. The pipeline cannot know whether the CA key signed
// before the crash: the signed DER lives only in memory until step 5
// commits, and it never left the process (no email, no download). The row is
// therefore REVOKED (cessationOfOperation) rather than deleted or
// "failed": its serial is never reused, it is listed on the CRL and OCSP
// answers "revoked" for it, so every serial that may have been signed keeps
// its record and can never be "good". The recipient is still 'ready' and is
// issued again with a new serial. The same is done when step 5 fails after
// signing (the DER is then stored with the revoked row).

import (
	"context"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"certdesk/internal/ca"
	"certdesk/internal/mail"
	"certdesk/internal/portal"
)

// IssueStore is what the pipeline needs from the database (store.DB).
type IssueStore interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	Recipient(ctx context.Context, q portal.Querier, id int64) (portal.Recipient, error)
	OrderHead(ctx context.Context, q portal.Querier, id int64) (portal.Order, int, error)
	OrgsForAccount(ctx context.Context, q portal.Querier, accountID int64) ([]portal.Organization, error)
	DomainsForOrg(ctx context.Context, q portal.Querier, orgID int64) ([]portal.Domain, error)
	RequeueReady(ctx context.Context, tx *sql.Tx, id int64, status portal.RecipientStatus) (bool, error)
	CloseOpenPeriod(ctx context.Context, tx *sql.Tx, certID int64) (bool, error)
	CompromisedKeys // SBR 6.1.1.3 (4): a store without the record does not compile
	UserByID(ctx context.Context, id int64) (portal.User, error)
	OpenRecipients(ctx context.Context, q portal.Querier, accountID int64) ([]portal.Recipient, error)
	CompleteOrderIfDone(ctx context.Context, q portal.Querier, orderID int64) error
	EnqueueEmail(ctx context.Context, tx *sql.Tx, e portal.Email) (int64, error)

	BeginIssuance(ctx context.Context, tx *sql.Tx, c *portal.Certificate, issuerID string) error
	BeginIssuances(ctx context.Context, tx *sql.Tx, certs []*portal.Certificate, issuerID string) ([]error, error)
	InSavepoint(ctx context.Context, tx *sql.Tx, fn func() error) (fnErr, err error)
	CompleteIssuance(ctx context.Context, tx *sql.Tx, c portal.Certificate, settledCents int64) error
	FailIssuance(ctx context.Context, q portal.Querier, id int64, lint []string, failure string) error
	RevokeUnstored(ctx context.Context, q portal.Querier, id int64, der []byte, failure string) error
	HoldRecipient(ctx context.Context, q portal.Querier, id int64, reason string) (bool, error)
	StaleIssuing(ctx context.Context, before time.Time) ([]portal.Certificate, error)
	SettledForRecipient(ctx context.Context, q portal.Querier, recipientID int64) (int64, error)
	IssuedCertificate(ctx context.Context, q portal.Querier, id int64) (portal.Certificate, error)
	RevokeCertificate(ctx context.Context, tx *sql.Tx, accountID, id int64, reason int, at time.Time, by string) error
	SetRecipientCSR(ctx context.Context, tx *sql.Tx, id int64, csrPEM string) (bool, error)
	ResetRecipientForKeyGen(ctx context.Context, tx *sql.Tx, id int64) error
	WithdrawKeyGenCSR(ctx context.Context, id int64, csrPEM string) (portal.RecipientStatus, error)

	RevokedCertificates(ctx context.Context, q portal.Querier, issuerID string) ([]portal.Certificate, error)
	LastRevokedAt(ctx context.Context, issuerID string) (time.Time, error)
	NextCRLNumber(ctx context.Context, tx *sql.Tx, issuerID string) (int64, error)
	SaveCRL(ctx context.Context, tx *sql.Tx, issuerID string, number int64, der []byte, thisUpdate, nextUpdate time.Time) error
	CRL(ctx context.Context, issuerID string) (der []byte, number int64, thisUpdate, nextUpdate time.Time, err error)
}

// Authority is the CA (*ca.Authority).
type Authority interface {
	Issue(req ca.IssueRequest) (*ca.Issued, error)
	IssuerID() string
	RootID() string
	ChainDER() [][]byte
	CRL(revoked []ca.Revoked, number *big.Int, now time.Time) ([]byte, error)
	RootCRL(revoked []ca.Revoked, number *big.Int, now time.Time) ([]byte, error)
	CanSignRootCRL() bool
}

// Settler takes payment for one issued certificate inside the caller's
// transaction (billing.Service).
type Settler interface {
	Settle(ctx context.Context, tx *sql.Tx, accountID, orderID int64, amount int64) error
}

// CAAChecker is the CAA issuemail check (validation.Checker).
type CAAChecker interface {
	CheckCAAIssueMail(ctx context.Context, domain string) (allowed bool, reason string, err error)
}

// Pipeline issues certificates. It implements Issuer.
type Pipeline struct {
	Store   IssueStore
	CA      Authority
	Billing Settler
	// CAA may be nil (tests, or no DNS): then no CAA check runs.
	CAA   CAAChecker
	Clock portal.Clock
	Log   *slog.Logger
	// Mail is nudged after a commit that queued email (may be nil).
	Mail interface{ Wake() }
	// BaseURL of the portal, for links in emails ("" leaves them out).
	BaseURL string
	// StaleAfter: an 'issuing' row older than this is an interrupted
	// attempt (default one minute).
	StaleAfter time.Duration
	// Workers sign in parallel in IssueBatch (default GOMAXPROCS).
	Workers int
	// BatchSize: IssueReady issues this many recipients per batch
	// (default DefaultBatchSize).
	BatchSize int
	// Mailboxes answers whether an address's mailbox validation is current
	// (validation.Service, as for the ordering service); required to issue
	// mailbox-validated products (SBR 4.2.1 at issuance).
	// When a recipient goes back to mailbox validation it also sends the
	// address a new confirmation link (StartMailboxForOrder).
	Mailboxes interface {
		MailboxValidated(ctx context.Context, q portal.Querier, accountID int64, email string) (bool, error)
		StartMailboxForOrder(ctx context.Context, tx *sql.Tx, accountID int64, email string, orderID int64, lang string) error
	}
}

var _ Issuer = (*Pipeline)(nil)

// HeldForReview is the reason the requestor sees when the CA refused to
// sign (the lint names are for CA staff only).
const HeldForReview = "issuance held for review"

// Mail kinds sent by the pipeline (their keys are in locales/certs.*.toml).
const (
	KindCertIssued       = "certificate_issued"
	KindCertIssuedNotice = "certificate_issued_notice"
)

// Outcome of one issuance attempt.
type Outcome int

const (
	Skipped    Outcome = iota // not ready (already issued, waiting for something, cancelled)
	InProgress                // another attempt holds the live row
	Issued                    // this attempt issued the certificate
	Held                      // refused: the recipient is held with a reason
)

// SerialHex formats a serial as stored: upper-case hex, no leading zeros.
func SerialHex(n *big.Int) string { return strings.ToUpper(n.Text(16)) }

func (p *Pipeline) now() time.Time { return p.Clock.Now() }

func (p *Pipeline) log() *slog.Logger {
	if p.Log == nil {
		return slog.Default()
	}
	return p.Log
}

// IssueRecipient issues a ready recipient's certificate. It is idempotent
// and safe to call concurrently: at most one certificate per recipient and
// plan period. A recipient that is not ready, or whose issuance another
// attempt is doing, returns nil. A refusal (CAA, lint, a request the CA
// cannot sign) holds the recipient and returns nil; an error means nothing
// changed and a later call may succeed (DNS failure, database error).
func (p *Pipeline) IssueRecipient(ctx context.Context, recipientID int64) error {
	_, err := p.Issue(ctx, recipientID)
	return err
}

// issueData is what one attempt loads before it records the intent.
type issueData struct {
	r       portal.Recipient
	o       portal.Order // without its recipients (Store.OrderHead)
	nRecips int          // how many recipients the order has
	prod    portal.Product
	org     *portal.Organization
	user    portal.User
	request ca.IssueRequest
	// back: a validation the certificate relies on is no longer current
	// (SBR 4.2.1); the recipient goes back to waiting for it.
	back portal.RecipientStatus
}

// Issue is IssueRecipient with the outcome: a batch of one (IssueBatch).
func (p *Pipeline) Issue(ctx context.Context, recipientID int64) (Outcome, error) {
	r := p.IssueBatch(ctx, []int64{recipientID})[0]
	return r.Outcome, r.Err
}

// load reads everything an attempt needs. Outcome Issued means "go on";
// a non-empty hold is a refusal: the recipient is to be held with that
// reason.
func (p *Pipeline) load(ctx context.Context, recipientID int64, m *loadMemo) (d *issueData, out Outcome, hold string, err error) {
	r, err := p.Store.Recipient(ctx, nil, recipientID)
	if err != nil {
		return nil, Skipped, "", err
	}
	if r.Status != portal.RecipientReady {
		return nil, Skipped, "", nil
	}
	oh, err := m.order(ctx, p.Store, r.OrderID)
	if err != nil {
		return nil, Skipped, "", err
	}
	o := oh.o
	if o.Status == portal.OrderCancelled {
		return nil, Skipped, "", nil
	}
	d = &issueData{r: r, o: o, nRecips: oh.n}
	prod, ok := portal.ProductByID(o.Product)
	if !ok {
		return nil, Skipped, "unknown product " + string(o.Product), nil
	}
	d.prod = prod
	if d.user, err = m.user(ctx, p.Store, o.UserID); err != nil {
		return nil, Skipped, "", err
	}
	pub, err := ca.ParseAcceptedCSR([]byte(r.CSR)) // accepted (and its signature verified) at intake
	if err != nil {
		if portal.ErrorCode(err) == portal.EInternal {
			return nil, Skipped, "", err
		}
		return nil, Skipped, portal.ErrorMessage(err), nil
	}
	req := ca.IssueRequest{Product: prod, Emails: []string{r.Email}, PublicKey: pub, SignatureHash: o.SignatureHash,
		PeriodEnd: o.PeriodEnd}
	if r.CNFromName {
		req.CommonNameFromName, req.CommonName = true, r.CommonName
	}
	if prod.NeedsOrganization {
		orgs, err := m.orgs(ctx, p.Store, o.AccountID)
		if err != nil {
			return nil, Skipped, "", err
		}
		for i := range orgs {
			if orgs[i].ID == o.OrganizationID {
				d.org = &orgs[i]
			}
		}
		if d.org == nil {
			return nil, Skipped, "the order's organization is missing", nil
		}
		if prod.OrgInSubject {
			req.OrgName, req.OrgCountry = d.org.LegalName, strings.ToUpper(strings.TrimSpace(d.org.Country))
			req.OrgIdentifier = OrgIdentifier(d.org.Country, d.org.Registration)
		}
	}
	d.request = req
	if d.back, err = p.validationLapsed(ctx, d); err != nil {
		return nil, Skipped, "", err
	}
	if d.back != "" {
		return d, Skipped, "", nil
	}
	return d, Issued, "", nil
}

// mailboxValidated asks p.Mailboxes (the validation service, which the
// ordering service asks too, so the 30-day rule is written once). Without
// one a mailbox-validated certificate is not issued.
func (p *Pipeline) mailboxValidated(ctx context.Context, accountID int64, email string) (bool, error) {
	if p.Mailboxes == nil {
		return false, errors.New("ordering: no mailbox validation checker wired (Pipeline.Mailboxes)")
	}
	return p.Mailboxes.MailboxValidated(ctx, nil, accountID, email)
}

// validationLapsed is SBR 4.2.1 at issuance: the validations the
// certificate relies on must be current when it is issued, not only when
// the order was placed (a KeyGen link is used up to 30 days later, a plan's
// next period starts years later, a held issuance is released later): the
// organization's, then the address's mailbox validation (at most
// portal.MailboxValidationReuse old) or a domain validation of the
// organization covering it (at most 398 days). It returns the status the
// recipient goes back to, or "" when all are current: the same rule as
// advanceRecipients, which moves it on again once revalidated.
func (p *Pipeline) validationLapsed(ctx context.Context, d *issueData) (portal.RecipientStatus, error) {
	now := p.now()
	if d.prod.NeedsOrganization && !d.org.Current(now) {
		return portal.RecipientAwaitingOrg, nil
	}
	if d.prod.MailboxValidation {
		ok, err := p.mailboxValidated(ctx, d.r.AccountID, d.r.Email)
		if err != nil || !ok {
			return portal.RecipientAwaitingMailbox, err
		}
		return "", nil
	}
	domains, err := p.Store.DomainsForOrg(ctx, nil, d.org.ID)
	if err != nil {
		return "", err
	}
	if !domainCurrent(domains, d.r.Email, now) {
		return portal.RecipientAwaitingDomain, nil
	}
	return "", nil
}

var orgIDForm = regexp.MustCompile(`^(?:[A-Z]{3}[A-Z]{2}(?:\+[A-Z0-9]{1,3})?-.+|GOV[A-Z]{2}(?:\+[A-Z0-9]{1,3})?|INTXG)$`)

var attrNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.6": "C", "2.5.4.97": "organizationIdentifier",
	"2.5.4.42": "givenName", "2.5.4.4": "surname", "2.5.4.65": "pseudonym", "2.5.4.5": "serialNumber",
	"2.5.4.7": "L", "2.5.4.8": "ST", "1.2.840.113549.1.9.1": "emailAddress",
}

// SubjectString shows a subject for people: attributes in certificate
// order with readable names ("CN=jane@example.com, O=Example Corp B.V.,
// organizationIdentifier=NTRNL-12345678, C=NL").
func SubjectString(n pkix.Name) string {
	parts := make([]string, 0, len(n.Names))
	for _, a := range n.Names {
		k, ok := attrNames[a.Type.String()]
		if !ok {
			k = a.Type.String()
		}
		parts = append(parts, fmt.Sprintf("%s=%v", k, a.Value))
	}
	return strings.Join(parts, ", ")
}

// OrgIdentifier is the subject:organizationIdentifier of an organization
// (SBR 7.1.4.2.2 d): a registration already in that form ("NTRNL-12345678")
// is kept, otherwise the national trade register scheme of the country is
// assumed: "NTR" + country + "-" + registration.
func OrgIdentifier(country, registration string) string {
	reg := strings.TrimSpace(registration)
	if orgIDForm.MatchString(reg) {
		return reg
	}
	return "NTR" + strings.ToUpper(strings.TrimSpace(country)) + "-" + reg
}

// ProfileName describes a product's SBR profile, as stored with the
// certificate: "sponsor-validated strict (2.23.140.1.5.3.3)".
func ProfileName(p portal.Product) string {
	oid := make([]string, 0, 7)
	for _, n := range portal.PolicyOID(p.Type, p.Generation) {
		oid = append(oid, strconv.Itoa(n))
	}
	return fmt.Sprintf("%s-validated %s (%s)", p.Type, p.Generation, strings.Join(oid, "."))
}

func isKey(err error, key string) bool {
	var pe *portal.Error
	return errors.As(err, &pe) && pe.Key == key
}

func (p *Pipeline) hold(ctx context.Context, recipientID int64, reason string) (Outcome, error) {
	ok, err := p.Store.HoldRecipient(ctx, nil, recipientID, reason)
	if err != nil {
		return Skipped, err
	}
	if !ok {
		return Skipped, nil
	}
	return Held, nil
}

// signFailed handles an error from Authority.Issue. A *ca.LintError or a
// request error (*portal.Error) means nothing was signed: the row fails and
// the recipient is held. Anything else may have come after the signature
// (the signed certificate did not match the linted one, or did not verify):
// the row is revoked so the serial is never "good", and the recipient is
// held for CA staff.
func (p *Pipeline) signFailed(ctx context.Context, cert portal.Certificate, err error) (Outcome, error) {
	var le *ca.LintError
	var pe *portal.Error
	switch {
	case errors.As(err, &le):
		p.log().Error("pre-issuance lint refused a certificate; nothing was signed", "recipient_id", cert.RecipientID,
			"serial", cert.Serial, "lints", strings.Join(le.Names(), ","))
		if ferr := p.Store.FailIssuance(ctx, nil, cert.ID, le.Names(), "pre-issuance lint"); ferr != nil {
			return Skipped, ferr
		}
		return p.hold(ctx, cert.RecipientID, HeldForReview)
	case errors.As(err, &pe) && pe.Code != portal.EInternal:
		p.log().Warn("the CA refused the request; nothing was signed", "recipient_id", cert.RecipientID, "err", err.Error())
		if ferr := p.Store.FailIssuance(ctx, nil, cert.ID, nil, pe.Message); ferr != nil {
			return Skipped, ferr
		}
		return p.hold(ctx, cert.RecipientID, pe.Message)
	}
	p.log().Error("signing failed; the serial is revoked", "recipient_id", cert.RecipientID, "serial", cert.Serial, "err", err.Error())
	if rerr := p.Store.RevokeUnstored(ctx, nil, cert.ID, nil, "signing failed: "+err.Error()); rerr != nil {
		return Skipped, errors.Join(err, rerr)
	}
	p.refreshCRLLogged(ctx)
	if _, herr := p.hold(ctx, cert.RecipientID, HeldForReview); herr != nil {
		return Skipped, errors.Join(err, herr)
	}
	return Held, err
}

// completionFailed: the certificate was signed but the completing
// transaction rolled back. The DER is kept on a revoked row (never
// delivered). The recipient stays ready for a retry, unless the failure
// is a refusal (payment) that a retry would repeat: then it is held with
// the reason.
func (p *Pipeline) completionFailed(ctx context.Context, d *issueData, cert portal.Certificate, err error) (Outcome, error) {
	p.log().Error("completing an issuance failed; the signed certificate is revoked", "recipient_id", cert.RecipientID,
		"serial", cert.Serial, "err", err.Error())
	if rerr := p.Store.RevokeUnstored(ctx, nil, cert.ID, cert.DER, "not delivered: "+err.Error()); rerr != nil {
		return Skipped, errors.Join(err, rerr)
	}
	p.refreshCRLLogged(ctx)
	if isKey(err, "certs.not_ready") {
		return Skipped, nil // cancelled meanwhile
	}
	if c := portal.ErrorCode(err); c != portal.EInternal {
		return p.hold(ctx, cert.RecipientID, portal.ErrorMessage(err))
	}
	return Skipped, err
}

// amountDue is what this certificate settles: the order's amount divided
// by its recipients for the first plan period, less anything already
// settled for the recipient (a KeyGen re-issue is not charged twice); 0
// for later periods of a plan (paid with the order).
func (p *Pipeline) amountDue(ctx context.Context, tx *sql.Tx, d *issueData) (int64, error) {
	if d.r.PlanPeriod > 1 || d.nRecips == 0 {
		return 0, nil
	}
	per := d.o.AmountCents / int64(d.nRecips)
	paid, err := p.Store.SettledForRecipient(ctx, tx, d.r.ID)
	if err != nil {
		return 0, err
	}
	return max(per-paid, 0), nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// issuedEmails are the "client certificate issued" email to the recipient
// (certificate as PEM and the PKCS#7 chain attached) and a notice to the
// requestor and the order's additional addresses.
func (p *Pipeline) issuedEmails(d *issueData, cert portal.Certificate, iss *ca.Issued) []portal.Email {
	lang := d.user.Lang
	data := map[string]any{"Email": d.r.Email, "Serial": cert.Serial, "OrderID": d.o.ID,
		"NotAfter": cert.NotAfter.UTC().Format("2006-01-02"), "Name": d.r.CommonName}
	var out []portal.Email
	var links []mail.Link
	if p.BaseURL != "" {
		links = []mail.Link{{Label: "certs.mail.issued.trust", URL: p.BaseURL + "/ca"}}
	}
	e, err := mail.Compose(lang, "certs.mail.issued.subject",
		[]string{"certs.mail.issued.body", "certs.mail.issued.attachments", "certs.mail.issued.import", "certs.mail.issued.trust_body"}, data, links)
	if err != nil {
		p.log().Error("composing the issued email", "err", err)
	} else {
		e.To, e.Kind = d.r.Email, KindCertIssued
		base := attachmentBase(d.r.Email)
		e.Attachments = []portal.Attachment{{Filename: base + ".pem", ContentType: "application/x-pem-file", Data: pemCert(cert.DER)}}
		if p7, err := iss.PKCS7(); err == nil {
			// RFC 8551 3.2.2: a certs-only message says so; a bare
			// application/pkcs7-mime part is taken for an encrypted
			// message (Thunderbird tries to decrypt it, attachment or not).
			e.Attachments = append(e.Attachments, portal.Attachment{Filename: base + ".p7b",
				ContentType: "application/pkcs7-mime; smime-type=certs-only", Data: p7})
		}
		out = append(out, e)
	}
	var nlinks []mail.Link
	if p.BaseURL != "" {
		nlinks = []mail.Link{{Label: "certs.mail.notice.open", URL: p.BaseURL + "/certificates/" + strconv.FormatInt(cert.ID, 10)}}
	}
	seen := map[string]bool{strings.ToLower(d.r.Email): true}
	for _, to := range append([]string{d.user.Email}, d.o.AdditionalEmails...) {
		if to == "" || seen[strings.ToLower(to)] {
			continue
		}
		seen[strings.ToLower(to)] = true
		n, err := mail.Compose(lang, "certs.mail.notice.subject", []string{"certs.mail.notice.body"}, data, nlinks)
		if err != nil {
			p.log().Error("composing the issued notice", "err", err)
			continue
		}
		n.To, n.Kind = to, KindCertIssuedNotice
		out = append(out, n)
	}
	return out
}

// attachmentBase makes a file name from an address: "jane_example.com".
func attachmentBase(email string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(email) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// IssuedCert is a certificate returned to KeyGen.
type IssuedCert struct {
	CertificateID  int64
	Serial         string
	CertificatePEM string
	// ChainPEM: the CA certificates above it, issuing CA first.
	ChainPEM []string
}

// IssueWithCSR stores a CSR made in the browser (KeyGen) on a recipient
// that awaits key generation, makes it ready and issues at once. A
// recipient in any other state is a conflict ("certs.already_issued"). An
// issuance that does not complete takes the CSR back (WithdrawKeyGenCSR)
// and is a conflict: "keygen.held" (held for review; a new link follows
// the review) or "keygen.deferred" (try again with the same link).
func (p *Pipeline) IssueWithCSR(ctx context.Context, recipientID int64, csrPEM string) (*IssuedCert, error) {
	if _, err := ca.ParseCSR([]byte(csrPEM)); err != nil {
		return nil, err
	}
	err := p.Store.Tx(ctx, func(tx *sql.Tx) error {
		ok, err := p.Store.SetRecipientCSR(ctx, tx, recipientID, strings.TrimSpace(csrPEM))
		if err != nil {
			return err
		}
		if !ok {
			return &portal.Error{Code: portal.EConflict, Key: "certs.already_issued",
				Message: "A certificate was already issued for this link."}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	_, err = p.Issue(ctx, recipientID)
	r, rerr := p.Store.Recipient(ctx, nil, recipientID)
	if rerr != nil {
		return nil, errors.Join(err, rerr)
	}
	switch r.Status {
	case portal.RecipientIssued:
		c, err := p.Store.IssuedCertificate(ctx, nil, r.CertificateID)
		if err != nil {
			return nil, err
		}
		out := &IssuedCert{CertificateID: c.ID, Serial: c.Serial, CertificatePEM: string(pemCert(c.DER))}
		for _, der := range p.CA.ChainDER() {
			out.ChainPEM = append(out.ChainPEM, string(pemCert(der)))
		}
		return out, nil
	}
	// Not issued now: held for review, or deferred (a CAA look-up failed,
	// a database error). The key of this CSR lives only in the page, which
	// drops it, so the CSR is taken back: issuing it later would make (and
	// charge) a certificate nobody holds the key of.
	st, werr := p.Store.WithdrawKeyGenCSR(ctx, recipientID, strings.TrimSpace(csrPEM))
	if werr != nil {
		return nil, errors.Join(err, werr)
	}
	switch st {
	case portal.RecipientHeld:
		return nil, &portal.Error{Code: portal.EConflict, Key: "keygen.held",
			Message: "The CA holds this certificate for review, so the key made in this page cannot be used. When the review is done you will get a new link by email."}
	case portal.RecipientAwaitingOrg, portal.RecipientAwaitingDomain, portal.RecipientAwaitingMailbox:
		return nil, &portal.Error{Code: portal.EConflict, Key: "keygen.revalidate",
			Message: "A validation this certificate needs has expired and must be done again first. Nothing was saved; when it is done you will get a new link by email."}
	case portal.RecipientAwaitingKeyGen:
		p.log().Warn("keygen: issuance deferred; the recipient can try again with the same link", "recipient_id", recipientID, "err", err)
		return nil, &portal.Error{Code: portal.EConflict, Key: "keygen.deferred",
			Message: "The certificate could not be issued just now. Nothing was saved: try again in a few minutes with the same link."}
	}
	if err == nil {
		err = errors.New("the certificate was not issued yet")
	}
	return nil, err
}

// RevokeUnused revokes a recipient's current certificate as superseded
// (RFC 5280 reason 4) and sends the recipient back to key generation in the
// same plan period, so a new certificate may be issued (KeyGen: a new link
// after the first certificate was issued). why is recorded with the
// revocation. The revoked certificate makes room in certificates_live; the
// re-issue is not charged again (amountDue).
func (p *Pipeline) RevokeUnused(ctx context.Context, recipientID int64, why string) error {
	r, err := p.Store.Recipient(ctx, nil, recipientID)
	if err != nil {
		return err
	}
	if r.Status != portal.RecipientIssued || r.CertificateID == 0 {
		return &portal.Error{Code: portal.EConflict, Key: "certs.not_issued", Message: "This recipient has no issued certificate to replace."}
	}
	err = p.Store.Tx(ctx, func(tx *sql.Tx) error {
		if err := p.Store.RevokeCertificate(ctx, tx, 0, r.CertificateID, 4, p.now(), "system: "+why); err != nil {
			return err
		}
		return p.Store.ResetRecipientForKeyGen(ctx, tx, r.ID)
	})
	if err != nil {
		return err
	}
	p.refreshCRLLogged(ctx)
	return nil
}

// Revoke revokes an account's issued certificate with an RFC 5280 reason
// allowed by SBR 4.9.1 / 7.2.2 (ca.RevocationReasons), recording by, and
// regenerates the CRL. The caller checks who may revoke.
func (p *Pipeline) Revoke(ctx context.Context, accountID, certID int64, reason int, by string) error {
	if !ca.ReasonAllowed(reason) {
		return portal.FieldError("reason", "certs.reason_invalid", "Choose a revocation reason.")
	}
	err := p.Store.Tx(ctx, func(tx *sql.Tx) error {
		if err := p.Store.RevokeCertificate(ctx, tx, accountID, certID, reason, p.now(), by); err != nil {
			return err
		}
		// The person left (affiliationChanged) or the organization stopped
		// (cessationOfOperation): a plan's next period, already open for
		// the last 30 days of this certificate, ends too; otherwise its
		// KeyGen link would still make them a new certificate.
		if reason == reasonAffiliationChanged || reason == reasonCessationOfOperation {
			if _, err := p.Store.CloseOpenPeriod(ctx, tx, certID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.refreshCRLLogged(ctx)
	return nil
}

// RFC 5280 5.3.1 reason codes that end the subscriber's need for the
// certificate (SBR 4.9.1.1).
const (
	reasonAffiliationChanged   = 3
	reasonCessationOfOperation = 5
)

func (p *Pipeline) refreshCRLLogged(ctx context.Context) {
	if err := p.RefreshCRL(ctx); err != nil {
		// The scheduler retries: CRLDue sees the newer revocation.
		p.log().Error("CRL not regenerated", "err", err)
	}
}

// RefreshCRL makes and stores a new CRL of the issuing CA (every revoked
// serial, next number) and, when the root key is present, of the root.
func (p *Pipeline) RefreshCRL(ctx context.Context) error {
	id := p.CA.IssuerID()
	err := p.Store.Tx(ctx, func(tx *sql.Tx) error {
		n, err := p.Store.NextCRLNumber(ctx, tx, id)
		if err != nil {
			return err
		}
		rows, err := p.Store.RevokedCertificates(ctx, tx, id)
		if err != nil {
			return err
		}
		list := make([]ca.Revoked, 0, len(rows))
		for _, c := range rows {
			s, ok := new(big.Int).SetString(c.Serial, 16)
			if !ok {
				return fmt.Errorf("certificate serial %q is not hex", c.Serial)
			}
			list = append(list, ca.Revoked{Serial: s, RevokedAt: c.RevokedAt, Reason: c.RevocationReason})
		}
		now := p.now()
		der, err := p.CA.CRL(list, big.NewInt(n), now)
		if err != nil {
			return err
		}
		return p.Store.SaveCRL(ctx, tx, id, n, der, now, now.Add(ca.CRLValidity))
	})
	if err != nil {
		return err
	}
	rid := p.CA.RootID()
	if rid == "" {
		return nil
	}
	return p.Store.Tx(ctx, func(tx *sql.Tx) error {
		n, err := p.Store.NextCRLNumber(ctx, tx, rid)
		if err != nil {
			return err
		}
		now := p.now()
		der, err := p.CA.RootCRL(nil, big.NewInt(n), now)
		if err != nil {
			return nil // no root key here: the root's CRL is published elsewhere
		}
		return p.Store.SaveCRL(ctx, tx, rid, n, der, now, now.Add(ca.RootCRLValidity))
	})
}

// CRLRefreshEvery: a CRL is regenerated at least this often (SBR 4.9.7
// requires at least every 7 days; certdesk does it daily).
const CRLRefreshEvery = 24 * time.Hour

// CRLDue reports whether the issuing CA's CRL must be regenerated: none
// yet, older than CRLRefreshEvery, or older than the newest revocation.
func (p *Pipeline) CRLDue(ctx context.Context) (bool, error) {
	_, _, this, _, err := p.Store.CRL(ctx, p.CA.IssuerID())
	if portal.ErrorCode(err) == portal.ENotFound {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if p.now().Sub(this) >= CRLRefreshEvery {
		return true, nil
	}
	last, err := p.Store.LastRevokedAt(ctx, p.CA.IssuerID())
	if err != nil {
		return false, err
	}
	return last.After(this), nil
}

// CurrentCRL returns the stored CRL of issuerID (the issuing CA or the
// root), regenerating it first when it is due or missing.
func (p *Pipeline) CurrentCRL(ctx context.Context, issuerID string) ([]byte, error) {
	if issuerID != p.CA.IssuerID() && issuerID != p.CA.RootID() || issuerID == "" {
		return nil, portal.Errorf(portal.ENotFound, "CRL not found")
	}
	if issuerID == p.CA.RootID() && !p.CA.CanSignRootCRL() {
		// The root key is kept offline: the root CRL stored while it was
		// here, if any. Never refresh: that cannot make the root's CRL and
		// re-signed the issuing CA's on every request for it.
		der, _, _, _, err := p.Store.CRL(ctx, issuerID)
		if portal.ErrorCode(err) == portal.ENotFound {
			return nil, portal.Errorf(portal.ENotFound, "this server does not publish the root CA's CRL")
		}
		return der, err
	}
	der, _, _, next, err := p.Store.CRL(ctx, issuerID)
	due := portal.ErrorCode(err) == portal.ENotFound || (err == nil && !p.now().Before(next))
	if err == nil && issuerID == p.CA.IssuerID() && !due {
		if due, err = p.CRLDue(ctx); err != nil {
			return nil, err
		}
	}
	if err != nil && !due {
		return nil, err
	}
	if due {
		if err := p.RefreshCRL(ctx); err != nil {
			return nil, err
		}
		if der, _, _, _, err = p.Store.CRL(ctx, issuerID); err != nil {
			return nil, err
		}
	}
	return der, nil
}

// Recover finds issuances interrupted before their completing transaction
// ('issuing' rows older than StaleAfter) and revokes their serials (see
// the package comment above: they may have been signed, they were never
// delivered). The recipients stay ready and are issued again by
// IssueReady. It returns how many rows it recovered.
func (p *Pipeline) Recover(ctx context.Context) (int, error) {
	after := p.StaleAfter
	if after <= 0 {
		after = time.Minute
	}
	return p.RecoverBefore(ctx, p.now().Add(-after))
}

// RecoverBefore is Recover for rows created before t. At start no attempt
// of this process is running, so every 'issuing' row is interrupted:
// call it with the current time.
func (p *Pipeline) RecoverBefore(ctx context.Context, t time.Time) (int, error) {
	stale, err := p.Store.StaleIssuing(ctx, t)
	if err != nil {
		return 0, err
	}
	for _, c := range stale {
		if err := p.Store.RevokeUnstored(ctx, nil, c.ID, nil,
			"interrupted before the certificate was stored; it may have been signed and was never delivered"); err != nil {
			return 0, err
		}
		p.log().Warn("recovered an interrupted issuance: serial revoked, recipient will be issued again",
			"certificate_id", c.ID, "recipient_id", c.RecipientID, "serial", c.Serial)
	}
	if len(stale) > 0 {
		if err := p.RefreshCRL(ctx); err != nil {
			return len(stale), err
		}
	}
	return len(stale), nil
}

// IssueReady tries every ready recipient of a pending order once (the
// scheduler's sweep), in batches of BatchSize (IssueBatch). Errors are
// logged; it returns how many it issued.
func (p *Pipeline) IssueReady(ctx context.Context) int {
	open, err := p.Store.OpenRecipients(ctx, nil, 0)
	if err != nil {
		p.log().Error("list ready recipients", "err", err)
		return 0
	}
	var ready []int64
	for _, r := range open {
		if r.Status == portal.RecipientReady {
			ready = append(ready, r.ID)
		}
	}
	return p.IssueRecipients(ctx, ready)
}

// IssueRecipients issues the given recipients in batches of BatchSize
// (IssueBatch); recipients that are not ready are skipped. Two batches are
// in flight at a time, so one batch's transactions (serial, mostly
// waiting for fsync) overlap the other's signing. Errors are logged; it
// returns how many it issued.
func (p *Pipeline) IssueRecipients(ctx context.Context, ids []int64) int {
	size := p.BatchSize
	if size <= 0 {
		size = DefaultBatchSize
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	inFlight := make(chan struct{}, 2)
	for len(ids) > 0 && ctx.Err() == nil {
		chunk := ids[:min(size, len(ids))]
		ids = ids[len(chunk):]
		inFlight <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-inFlight; wg.Done() }()
			for _, r := range p.IssueBatch(ctx, chunk) {
				if r.Err != nil {
					p.log().Warn("issuance deferred", "recipient_id", r.RecipientID, "err", r.Err.Error())
				}
				if r.Outcome == Issued {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(n.Load())
}
