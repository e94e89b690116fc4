package validation

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"

	"certdesk/internal/portal"
)

// OrgInput is what the account administrator types about an organization.
type OrgInput struct {
	LegalName    string
	AssumedName  string
	Address      string
	City         string
	PostalCode   string
	Country      string
	Phone        string
	Registration string
	OrgContact   portal.Contact
	TechContact  portal.Contact
}

// Form field names of OrgInput (errors name them).
const (
	FieldLegalName    = "legal_name"
	FieldAssumedName  = "assumed_name"
	FieldAddress      = "address"
	FieldCity         = "city"
	FieldPostalCode   = "postal_code"
	FieldCountry      = "country"
	FieldPhone        = "phone"
	FieldRegistration = "registration"
	FieldOrgContact   = "org_contact"  // + "_name", "_email", "_phone"
	FieldTechContact  = "tech_contact" // + "_name", "_email", "_phone"
	FieldCode         = "code"
	FieldDomain       = "domain"
	FieldMethod       = "method"
	FieldOrganization = "organization"
	FieldReason       = "reason"
)

// CheckOrgInput normalizes in and returns every field error at once.
func CheckOrgInput(in OrgInput) (OrgInput, error) {
	var fe portal.FieldErrors
	text := func(field, v string, max int, required bool) string {
		v = strings.Join(strings.Fields(v), " ")
		switch {
		case v == "" && required:
			fe.Add(field, "val.err.required", "This field is required.")
		case utf8.RuneCountInString(v) > max:
			fe = append(fe, &portal.Error{Code: portal.EInvalid, Field: field, Key: "val.err.too_long",
				Message: fmt.Sprintf("Use at most %d characters.", max), Data: map[string]any{"N": max}})
		case !printable(v):
			fe.Add(field, "val.err.chars", "This field contains characters that are not allowed.")
		}
		return v
	}
	// X.520 upper bounds: organizationName 64 (SBR 7.1.4.2.2 a).
	in.LegalName = text(FieldLegalName, in.LegalName, 64, true)
	in.AssumedName = text(FieldAssumedName, in.AssumedName, 64, false)
	in.Address = text(FieldAddress, in.Address, 200, true)
	in.City = text(FieldCity, in.City, 128, true)
	in.PostalCode = text(FieldPostalCode, in.PostalCode, 40, false)
	in.Registration = text(FieldRegistration, in.Registration, 64, false)
	in.Country = strings.ToUpper(strings.TrimSpace(in.Country))
	if !validCountry(in.Country) {
		fe.Add(FieldCountry, "val.err.country", "Enter the two-letter country code, like NL or DE.")
	}
	var ok bool
	if in.Phone, ok = normPhone(in.Phone); !ok {
		fe.Add(FieldPhone, "val.err.phone", "Enter the number in international format, like +31 20 123 4567.")
	}
	contact := func(prefix string, c portal.Contact) portal.Contact {
		c.Name = text(prefix+"_name", c.Name, 100, true)
		if e, ok := portal.NormalizeEmail(c.Email); ok {
			c.Email = e
		} else {
			fe.Add(prefix+"_email", "val.err.email", "Enter a valid email address, like name@example.com.")
		}
		if strings.TrimSpace(c.Phone) == "" {
			c.Phone = ""
		} else if p, ok := normPhone(c.Phone); ok {
			c.Phone = p
		} else {
			fe.Add(prefix+"_phone", "val.err.phone", "Enter the number in international format, like +31 20 123 4567.")
		}
		return c
	}
	in.OrgContact = contact(FieldOrgContact, in.OrgContact)
	in.TechContact = contact(FieldTechContact, in.TechContact)
	return in, fe.Err()
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == '<' || r == '>' {
			return false
		}
	}
	return true
}

func validCountry(c string) bool {
	if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
		return false
	}
	r, err := language.ParseRegion(c)
	return err == nil && r.IsCountry() && r.String() == c
}

// normPhone accepts an international number: "+" and 7 to 15 digits
// (E.164), with spaces, dots, dashes and parentheses for readability.
func normPhone(p string) (string, bool) {
	p = strings.TrimSpace(p)
	if strings.HasPrefix(p, "00") {
		p = "+" + p[2:]
	}
	if !strings.HasPrefix(p, "+") || len(p) > 30 {
		return "", false
	}
	digits := 0
	for _, r := range p[1:] {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", false
		}
	}
	if digits < 7 || digits > 15 {
		return "", false
	}
	return strings.Join(strings.Fields(p), " "), true
}

func orgFromInput(o *portal.Organization, in OrgInput) {
	o.LegalName, o.AssumedName, o.Address, o.City, o.PostalCode = in.LegalName, in.AssumedName, in.Address, in.City, in.PostalCode
	o.Country, o.Phone, o.Registration, o.OrgContact, o.TechContact = in.Country, in.Phone, in.Registration, in.OrgContact, in.TechContact
}

// Editable reports whether an organization's details may be changed at
// now: not while CA staff validate it, and not while its validation is
// current (the validated details are what certificates carry).
func Editable(o portal.Organization, now time.Time) bool {
	switch o.State(now) {
	case portal.OrgDraft, portal.OrgRejected, portal.OrgExpired:
		return true
	}
	return false
}

// CreateOrg adds a draft organization to the account.
func (s *Service) CreateOrg(ctx context.Context, a Actor, accountID int64, in OrgInput, lang string) (portal.Organization, error) {
	in, err := CheckOrgInput(in)
	if err != nil {
		return portal.Organization{}, err
	}
	o := portal.Organization{AccountID: accountID, Status: portal.OrgDraft, CreatedAt: s.now()}
	orgFromInput(&o, in)
	err = s.Store.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.Store.InsertOrg(ctx, tx, &o, lang); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, AuditOrgCreated, "organization", o.ID, accountID, o.LegalName)
	})
	return o, err
}

// UpdateOrg changes an organization's details (draft, rejected or expired
// only: see Editable).
func (s *Service) UpdateOrg(ctx context.Context, a Actor, accountID, id int64, in OrgInput) error {
	in, err := CheckOrgInput(in)
	if err != nil {
		return err
	}
	return s.Store.Tx(ctx, func(tx *sql.Tx) error {
		o, err := s.Store.Org(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		if !Editable(o, s.now()) {
			return &portal.Error{Code: portal.EConflict, Key: "val.org.not_editable",
				Message: "This organization is being validated or is validated; its details cannot be changed now."}
		}
		orgFromInput(&o, in)
		if err := s.Store.UpdateOrgDetails(ctx, tx, o); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, AuditOrgUpdated, "organization", o.ID, accountID, o.LegalName)
	})
}

// Org returns an organization of the account (ENotFound for another
// account's) and its latest voicemail code.
func (s *Service) Org(ctx context.Context, accountID, id int64) (portal.Organization, OrgCode, error) {
	o, err := s.Store.Org(ctx, nil, accountID, id)
	if err != nil {
		return o, OrgCode{}, err
	}
	c, err := s.Store.LatestOrgCode(ctx, nil, id)
	if err != nil && portal.ErrorCode(err) != portal.ENotFound {
		return o, OrgCode{}, err
	}
	return o, c, nil
}

// Orgs lists the account's organizations.
func (s *Service) Orgs(ctx context.Context, accountID int64) ([]portal.Organization, error) {
	return s.Store.ListOrgs(ctx, nil, accountID)
}

// SubmitOrg puts a draft, rejected or expired organization in the
// validation queue (prevalidation) and tells both contacts a call is
// coming.
func (s *Service) SubmitOrg(ctx context.Context, a Actor, accountID, id int64, lang string) error {
	return s.Store.Tx(ctx, func(tx *sql.Tx) error {
		o, err := s.Store.Org(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		if !Editable(o, s.now()) {
			return &portal.Error{Code: portal.EConflict, Key: "val.org.not_submittable",
				Message: "This organization is already being validated or is validated."}
		}
		return s.submitTx(ctx, tx, a, o, 0, lang)
	})
}

func (s *Service) submitTx(ctx context.Context, tx *sql.Tx, a Actor, o portal.Organization, orderID int64, lang string) error {
	now := s.now()
	if err := s.Store.SetOrgPending(ctx, tx, o.ID, now, orderID, lang); err != nil {
		return err
	}
	if err := s.Store.KillOrgCodes(ctx, tx, o.ID, now); err != nil {
		return err
	}
	detail := "prevalidation"
	if orderID != 0 {
		detail = "as part of order " + strconv.FormatInt(orderID, 10)
	}
	if err := s.audit(ctx, tx, a, AuditOrgSubmitted, "organization", o.ID, o.AccountID, detail); err != nil {
		return err
	}
	return s.mailContacts(ctx, tx, o, lang, KindOrgSubmitted, "val.mail.org_submitted.subject",
		[]string{"val.mail.greeting", "val.mail.org_submitted.body", "val.mail.org_submitted.consent"}, nil)
}

// mailContacts sends one email to the organization contact and one to the
// technical contact (one when they are the same address).
func (s *Service) mailContacts(ctx context.Context, tx *sql.Tx, o portal.Organization, lang, kind, subject string, body []string, extra map[string]any) error {
	data := map[string]any{"Org": o.LegalName, "Phone": o.Phone, "Callback": s.CallbackPhone}
	for k, v := range extra {
		data[k] = v
	}
	links := []MailLink{{Label: "val.mail.open_org", URL: s.link("/organizations/" + strconv.FormatInt(o.ID, 10))}}
	seen := map[string]bool{}
	for _, c := range []portal.Contact{o.OrgContact, o.TechContact} {
		if c.Email == "" || seen[c.Email] {
			continue
		}
		seen[c.Email] = true
		data["Name"] = c.Name
		if err := s.mail(ctx, tx, lang, kind, c.Email, subject, body, data, links); err != nil {
			return err
		}
	}
	return nil
}

// SubmitOrgForOrder starts validation of an organization "as part of the
// order" (ordering.Validator): a draft, rejected or expired organization
// goes into the queue tagged with the order; a pending or current one is
// left as it is.
func (s *Service) SubmitOrgForOrder(ctx context.Context, tx *sql.Tx, accountID, orgID, orderID int64) error {
	o, err := s.Store.Org(ctx, tx, accountID, orgID)
	if err != nil {
		return err
	}
	if !Editable(o, s.now()) {
		return nil
	}
	lang, err := s.Store.OrgLang(ctx, tx, orgID)
	if err != nil {
		return err
	}
	return s.submitTx(ctx, tx, Actor{}, o, orderID, lang)
}

// Queue lists the pending organizations of every account, oldest first,
// for CA validation agents.
func (s *Service) Queue(ctx context.Context) ([]QueueItem, error) {
	orgs, err := s.Store.PendingOrgs(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := make([]QueueItem, 0, len(orgs))
	names := map[int64]string{}
	for _, o := range orgs {
		it := QueueItem{Org: o}
		if n, ok := names[o.AccountID]; ok {
			it.AccountName = n
		} else if acct, err := s.Store.AccountByID(ctx, o.AccountID); err == nil {
			it.AccountName, names[o.AccountID] = acct.Name, acct.Name
		}
		if c, err := s.Store.LatestOrgCode(ctx, nil, o.ID); err == nil {
			it.Code = c
		} else if portal.ErrorCode(err) != portal.ENotFound {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

// StaffOrg returns any account's organization for CA staff, with its
// latest code and account name.
func (s *Service) StaffOrg(ctx context.Context, id int64) (QueueItem, error) {
	o, c, err := s.Org(ctx, 0, id)
	if err != nil {
		return QueueItem{}, err
	}
	it := QueueItem{Org: o, Code: c}
	if acct, err := s.Store.AccountByID(ctx, o.AccountID); err == nil {
		it.AccountName = acct.Name
	}
	return it, nil
}

func (s *Service) pendingForStaff(ctx context.Context, tx *sql.Tx, id int64) (portal.Organization, error) {
	o, err := s.Store.Org(ctx, tx, 0, id)
	if err != nil {
		return o, err
	}
	if o.Status != portal.OrgPending {
		return o, &portal.Error{Code: portal.EConflict, Key: "val.staff.not_pending",
			Message: "This organization is not waiting for validation (another agent may have handled it)."}
	}
	return o, nil
}

func cleanNotes(s string) (string, error) {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > 2000 {
		return "", &portal.Error{Code: portal.EInvalid, Field: "notes", Key: "val.err.too_long", Message: "Use at most 2000 characters.", Data: map[string]any{"N": 2000}}
	}
	return s, nil
}

// CallCompleted records "call completed, consent given" by a validation
// agent (SBR 3.2.3, with the reliable method of communication of SBR
// 3.2.8): the organization is validated now, for 825 days (SBR 4.2.1).
func (s *Service) CallCompleted(ctx context.Context, agent Actor, id int64, notes string) error {
	notes, err := cleanNotes(notes)
	if err != nil {
		return err
	}
	var accountID int64
	err = s.Store.Tx(ctx, func(tx *sql.Tx) error {
		o, err := s.pendingForStaff(ctx, tx, id)
		if err != nil {
			return err
		}
		accountID = o.AccountID
		return s.validateOrgTx(ctx, tx, agent, o, agent.Email, notes, AuditOrgCallCompleted, "call completed, consent given")
	})
	if err == nil {
		s.advance(ctx, accountID)
	}
	return err
}

func (s *Service) validateOrgTx(ctx context.Context, tx *sql.Tx, a Actor, o portal.Organization, by, notes, action, detail string) error {
	now := s.now()
	expires := now.Add(portal.OrgValidationReuse)
	if err := s.Store.SetOrgValidated(ctx, tx, o.ID, now, expires, by, notes); err != nil {
		return err
	}
	if err := s.Store.KillOrgCodes(ctx, tx, o.ID, now); err != nil {
		return err
	}
	if notes != "" {
		detail += "; notes: " + notes
	}
	if err := s.audit(ctx, tx, a, action, "organization", o.ID, o.AccountID, detail); err != nil {
		return err
	}
	lang, err := s.Store.OrgLang(ctx, tx, o.ID)
	if err != nil {
		return err
	}
	return s.mailContacts(ctx, tx, o, lang, KindOrgValidated, "val.mail.org_validated.subject",
		[]string{"val.mail.greeting", "val.mail.org_validated.body"}, map[string]any{"Expires": expires.Format("2006-01-02")})
}

// LeftMessage records that the agent reached voicemail: it makes a new
// verification code (the previous one dies), valid for 7 days, returned
// once so the agent can read it aloud with the call-back number. Only the
// code's hash is stored. The contacts get an email saying a message with a
// code was left and where to enter it; the email never carries the code
// (that would let whoever reads the contact mailbox skip the phone call).
func (s *Service) LeftMessage(ctx context.Context, agent Actor, id int64, notes string) (string, time.Time, error) {
	notes, err := cleanNotes(notes)
	if err != nil {
		return "", time.Time{}, err
	}
	code := portal.NewReadableCode(OrgCodeLength)
	now := s.now()
	c := OrgCode{OrganizationID: id, Hash: tokenHash(portal.NormalizeCode(code)), CreatedBy: agent.Email,
		CreatedAt: now, ExpiresAt: now.Add(portal.OrgCodeLifetime)}
	err = s.Store.Tx(ctx, func(tx *sql.Tx) error {
		o, err := s.pendingForStaff(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := s.Store.KillOrgCodes(ctx, tx, id, now); err != nil {
			return err
		}
		if err := s.Store.InsertOrgCode(ctx, tx, &c); err != nil {
			return err
		}
		detail := "voicemail left; code expires " + c.ExpiresAt.Format(time.RFC3339)
		if notes != "" {
			detail += "; notes: " + notes
		}
		if err := s.audit(ctx, tx, agent, AuditOrgMessageLeft, "organization", id, o.AccountID, detail); err != nil {
			return err
		}
		lang, err := s.Store.OrgLang(ctx, tx, id)
		if err != nil {
			return err
		}
		return s.mailContacts(ctx, tx, o, lang, KindOrgMessageLeft, "val.mail.org_message.subject",
			[]string{"val.mail.greeting", "val.mail.org_message.body", "val.mail.org_message.expiry"},
			map[string]any{"Expires": c.ExpiresAt.Format("2006-01-02 15:04 MST")})
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return code, c.ExpiresAt, nil
}

// Reject rejects a pending organization with a reason that is emailed to
// both contacts.
func (s *Service) Reject(ctx context.Context, agent Actor, id int64, reason, notes string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return portal.FieldError(FieldReason, "val.err.reason_required", "Give the reason; it is emailed to the contacts.")
	}
	if utf8.RuneCountInString(reason) > 1000 {
		return &portal.Error{Code: portal.EInvalid, Field: FieldReason, Key: "val.err.too_long", Message: "Use at most 1000 characters.", Data: map[string]any{"N": 1000}}
	}
	notes, err := cleanNotes(notes)
	if err != nil {
		return err
	}
	return s.Store.Tx(ctx, func(tx *sql.Tx) error {
		o, err := s.pendingForStaff(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := s.Store.SetOrgRejected(ctx, tx, id, reason, agent.Email, notes); err != nil {
			return err
		}
		if err := s.Store.KillOrgCodes(ctx, tx, id, s.now()); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, agent, AuditOrgRejected, "organization", id, o.AccountID, "reason: "+reason); err != nil {
			return err
		}
		lang, err := s.Store.OrgLang(ctx, tx, id)
		if err != nil {
			return err
		}
		return s.mailContacts(ctx, tx, o, lang, KindOrgRejected, "val.mail.org_rejected.subject",
			[]string{"val.mail.greeting", "val.mail.org_rejected.body"}, map[string]any{"Reason": reason})
	})
}

// EnterCode checks a verification code typed on the organization's page.
// A correct, live code validates the organization (825 days). A wrong code
// is counted; after MaxOrgCodeAttempts wrong codes the code is void. The
// comparison is of hashes, in constant time.
func (s *Service) EnterCode(ctx context.Context, a Actor, accountID, id int64, code string) error {
	typed := portal.NormalizeCode(code)
	if typed == "" {
		return portal.FieldError(FieldCode, "val.err.code_required", "Enter the code from the voicemail.")
	}
	if len(typed) > 64 {
		typed = typed[:64]
	}
	var wrong error
	var validated bool
	err := s.Store.Tx(ctx, func(tx *sql.Tx) error {
		o, err := s.Store.Org(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		if o.Status != portal.OrgPending {
			return &portal.Error{Code: portal.EConflict, Field: FieldCode, Key: "val.code.not_pending", Message: "This organization is not waiting for a code."}
		}
		c, err := s.Store.LatestOrgCode(ctx, tx, id)
		if portal.ErrorCode(err) == portal.ENotFound {
			return portal.FieldError(FieldCode, "val.code.none", "No code has been issued for this organization. Wait for our call.")
		}
		if err != nil {
			return err
		}
		now := s.now()
		switch {
		case !c.UsedAt.IsZero() || !c.KilledAt.IsZero():
			return portal.FieldError(FieldCode, "val.code.none", "No code has been issued for this organization. Wait for our call.")
		case c.FailedAttempts >= MaxOrgCodeAttempts:
			return &portal.Error{Code: portal.ETooMany, Field: FieldCode, Key: "val.code.locked",
				Message: "Too many wrong codes. This code no longer works; we will call again."}
		case !now.Before(c.ExpiresAt):
			return &portal.Error{Code: portal.EInvalid, Field: FieldCode, Key: "val.code.expired",
				Message: "This code has expired (codes are valid for 7 days). We will call again."}
		}
		if !portal.TokenEqual(tokenHash(typed), c.Hash) {
			if err := s.Store.AddOrgCodeFailure(ctx, tx, c.ID); err != nil {
				return err
			}
			left := MaxOrgCodeAttempts - c.FailedAttempts - 1
			if err := s.audit(ctx, tx, a, AuditOrgCodeWrong, "organization", id, o.AccountID, fmt.Sprintf("%d attempts left", left)); err != nil {
				return err
			}
			if left <= 0 {
				wrong = &portal.Error{Code: portal.ETooMany, Field: FieldCode, Key: "val.code.locked",
					Message: "Too many wrong codes. This code no longer works; we will call again."}
			} else {
				wrong = &portal.Error{Code: portal.EInvalid, Field: FieldCode, Key: "val.code.wrong",
					Message: fmt.Sprintf("That code is not correct. %d attempts left.", left), Data: map[string]any{"N": left}}
			}
			return nil // commit the count
		}
		if err := s.Store.UseOrgCode(ctx, tx, c.ID, now); err != nil {
			return err
		}
		validated = true
		return s.validateOrgTx(ctx, tx, a, o, "voicemail code ("+c.CreatedBy+")", "", AuditOrgCodeAccepted, "verification code entered")
	})
	if err != nil {
		return err
	}
	if wrong != nil {
		return wrong
	}
	if validated {
		s.advance(ctx, accountID)
	}
	return nil
}
