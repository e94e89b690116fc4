package validation

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"certdesk/internal/portal"
)

// ValidMethod reports whether m is one of the four DCV methods.
func ValidMethod(m portal.DCVMethod) bool {
	switch m {
	case portal.DCVEmail, portal.DCVDNSTXT, portal.DCVDNSCNAME, portal.DCVHTTP:
		return true
	}
	return false
}

// Instructions say exactly what to publish for a domain's method.
type Instructions struct {
	Method portal.DCVMethod
	// DNS TXT: a TXT record with Value at Name or AltName.
	// DNS CNAME: Name CNAME Target.
	// HTTP: a file at URL whose content is Value.
	Name, AltName, Target, URL, Value string
	// Email: the constructed addresses the approval links go to.
	Emails []string
}

// InstructionsFor builds the instructions of a domain record.
func (s *Service) InstructionsFor(d DomainRecord) Instructions {
	in := Instructions{Method: d.Method, Value: d.RandomValue}
	switch d.Method {
	case portal.DCVDNSTXT:
		in.Name, in.AltName = d.Name, DNSAuthLabel+"."+d.Name
	case portal.DCVDNSCNAME:
		in.Name, in.Target = d.RandomValue+"."+d.Name, s.Checker.Config().CNAMETarget
	case portal.DCVHTTP:
		in.URL = "http://" + d.Name + HTTPPath
	case portal.DCVEmail:
		in.Emails = ConstructedEmails(d.Name)
	}
	return in
}

// Domains lists the account's domains.
func (s *Service) Domains(ctx context.Context, accountID int64) ([]DomainRecord, error) {
	return s.Store.ListDomains(ctx, nil, accountID)
}

// Domain returns one of the account's domains (ENotFound for another
// account's).
func (s *Service) Domain(ctx context.Context, accountID, id int64) (DomainRecord, error) {
	return s.Store.Domain(ctx, nil, accountID, id)
}

// AddDomain adds a domain to one of the account's organizations for
// prevalidation, with any of the four methods. Public mail provider
// domains may be added here (and only here: never inside an order).
// A domain already covered by a current validation of the organization
// (itself or a parent) is refused: it needs no validation.
func (s *Service) AddDomain(ctx context.Context, a Actor, accountID, orgID int64, name string, m portal.DCVMethod, lang string) (DomainRecord, error) {
	var fe portal.FieldErrors
	d, ok := portal.NormalizeDomain(name)
	if !ok {
		fe.Add(FieldDomain, "val.err.domain", "Enter a domain name, like example.com.")
	}
	if !ValidMethod(m) {
		fe.Add(FieldMethod, "val.err.method", "Choose how to demonstrate control.")
	}
	if orgID == 0 {
		fe.Add(FieldOrganization, "val.err.org_required", "Choose the organization.")
	}
	if len(fe) > 0 {
		return DomainRecord{}, fe
	}
	var rec DomainRecord
	err := s.Store.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.Store.Org(ctx, tx, accountID, orgID); err != nil {
			if portal.ErrorCode(err) == portal.ENotFound {
				return portal.FieldError(FieldOrganization, "val.err.org_required", "Choose the organization.")
			}
			return err
		}
		if err := s.refuseCovered(ctx, tx, accountID, orgID, d); err != nil {
			return err
		}
		var err error
		rec, err = s.insertDomainTx(ctx, tx, a, accountID, orgID, d, m, 0, lang)
		return err
	})
	return rec, err
}

func (s *Service) refuseCovered(ctx context.Context, tx *sql.Tx, accountID, orgID int64, d string) error {
	all, err := s.Store.ListDomains(ctx, tx, accountID)
	if err != nil {
		return err
	}
	now := s.now()
	for _, x := range all {
		if x.OrganizationID != orgID {
			continue
		}
		if x.Name == d {
			return &portal.Error{Code: portal.EInvalid, Field: FieldDomain, Key: "val.err.domain_exists",
				Message: "This domain is already listed for the organization.", Data: map[string]any{"Domain": d}}
		}
		if x.Current(now) && portal.DomainCovers(x.Name, d) {
			return &portal.Error{Code: portal.EInvalid, Field: FieldDomain, Key: "val.err.domain_covered",
				Message: "This domain is already covered by the validated domain " + x.Name + ".", Data: map[string]any{"Domain": x.Name}}
		}
	}
	return nil
}

func (s *Service) insertDomainTx(ctx context.Context, tx *sql.Tx, a Actor, accountID, orgID int64, name string, m portal.DCVMethod, orderID int64, lang string) (DomainRecord, error) {
	now := s.now()
	d := portal.Domain{AccountID: accountID, OrganizationID: orgID, Name: name, Method: m, Status: portal.DomainPending,
		OrderID: orderID, CreatedAt: now}
	if m != portal.DCVEmail {
		// TLS BR 3.2.2.4.7 / 3.2.2.4.18: a Random Value of at least 112
		// bits (here 160), valid for 30 days.
		d.RandomValue, d.ValueExpiresAt = portal.NewToken(), now.Add(portal.DomainValueLifetime)
	} else {
		d.ValueExpiresAt = now.Add(portal.DomainValueLifetime)
	}
	if err := s.Store.InsertDomain(ctx, tx, &d, lang); err != nil {
		return DomainRecord{}, err
	}
	detail := string(m)
	if orderID != 0 {
		detail += " as part of order " + strconv.FormatInt(orderID, 10)
	}
	if err := s.audit(ctx, tx, a, AuditDomainAdded, "domain", d.ID, accountID, name+" "+detail); err != nil {
		return DomainRecord{}, err
	}
	rec := DomainRecord{Domain: d, Lang: lang}
	if m == portal.DCVEmail {
		if err := s.sendDomainEmailsTx(ctx, tx, a, rec, lang); err != nil {
			return DomainRecord{}, err
		}
	}
	return rec, nil
}

// sendDomainEmailsTx kills earlier approval links of the domain and sends
// one email with its own random value to each constructed address
// (TLS BR 3.2.2.4.4), valid 30 days.
func (s *Service) sendDomainEmailsTx(ctx context.Context, tx *sql.Tx, a Actor, d DomainRecord, lang string) error {
	now := s.now()
	if err := s.Store.KillEmailTokens(ctx, tx, d.ID, now); err != nil {
		return err
	}
	org, err := s.Store.Org(ctx, tx, d.AccountID, d.OrganizationID)
	if err != nil {
		return err
	}
	for _, addr := range ConstructedEmails(d.Name) {
		tok := portal.NewToken()
		t := EmailToken{DomainID: d.ID, Email: addr, Hash: tokenHash(tok), CreatedAt: now, ExpiresAt: now.Add(portal.DomainValueLifetime)}
		if err := s.Store.InsertEmailToken(ctx, tx, &t); err != nil {
			return err
		}
		data := map[string]any{"Domain": d.Name, "Org": org.LegalName, "Expires": t.ExpiresAt.Format("2006-01-02")}
		if err := s.mail(ctx, tx, lang, KindDomainApproval, addr, "val.mail.domain.subject",
			[]string{"val.mail.domain.greeting", "val.mail.domain.body", "val.mail.domain.ignore"}, data,
			[]MailLink{{Label: "val.mail.domain.open", URL: s.link("/verify/domain/" + tok)}}); err != nil {
			return err
		}
	}
	return s.audit(ctx, tx, a, AuditDomainEmailSent, "domain", d.ID, d.AccountID, strings.Join(ConstructedEmails(d.Name), ", "))
}

// StartDomainEmailForOrder validates a new email domain "as part of order
// N" (ordering.Validator). Inside an order only the constructed-email
// method is offered, and public mail provider domains are refused (they
// can only be prevalidated). A domain that is already current is left
// alone; one that is pending by email with live links is not mailed again.
func (s *Service) StartDomainEmailForOrder(ctx context.Context, tx *sql.Tx, accountID, orgID int64, domain string, orderID int64, lang string) error {
	d, ok := portal.NormalizeDomain(domain)
	if !ok {
		return portal.FieldError(FieldDomain, "val.err.domain", "Enter a domain name, like example.com.")
	}
	if portal.IsPublicMailDomain(d) {
		return &portal.Error{Code: portal.EInvalid, Field: FieldDomain, Key: "val.err.public_in_order",
			Message: d + " is a public mail provider: it can only be prevalidated, not validated inside an order.",
			Data:    map[string]any{"Domain": d}}
	}
	if _, err := s.Store.Org(ctx, tx, accountID, orgID); err != nil {
		return err
	}
	rec, err := s.Store.DomainByName(ctx, tx, orgID, d)
	if portal.ErrorCode(err) == portal.ENotFound {
		_, err = s.insertDomainTx(ctx, tx, Actor{}, accountID, orgID, d, portal.DCVEmail, orderID, lang)
		return err
	}
	if err != nil {
		return err
	}
	now := s.now()
	if rec.Current(now) {
		return nil
	}
	if rec.Method == portal.DCVEmail {
		if n, err := s.Store.LiveEmailTokens(ctx, tx, rec.ID, now); err != nil || n > 0 {
			return err
		}
	}
	if err := s.Store.SetDomainMethod(ctx, tx, rec.ID, portal.DCVEmail, "", now.Add(portal.DomainValueLifetime), lang); err != nil {
		return err
	}
	rec.Method, rec.RandomValue = portal.DCVEmail, ""
	return s.sendDomainEmailsTx(ctx, tx, Actor{}, rec, lang)
}

// ChangeMethod picks a (new) method for a domain that is not current and
// issues a fresh random value (the old one dies); for the email method it
// sends new approval links, which is also how links are re-sent.
func (s *Service) ChangeMethod(ctx context.Context, a Actor, accountID, id int64, m portal.DCVMethod, lang string) error {
	if !ValidMethod(m) {
		return portal.FieldError(FieldMethod, "val.err.method", "Choose how to demonstrate control.")
	}
	return s.Store.Tx(ctx, func(tx *sql.Tx) error {
		rec, err := s.Store.Domain(ctx, tx, accountID, id)
		if err != nil {
			return err
		}
		now := s.now()
		if rec.Current(now) {
			return &portal.Error{Code: portal.EConflict, Key: "val.domain.already_valid", Message: "This domain is validated; nothing to do until its validation expires."}
		}
		value := ""
		if m != portal.DCVEmail {
			value = portal.NewToken()
		}
		if err := s.Store.KillEmailTokens(ctx, tx, id, now); err != nil {
			return err
		}
		if err := s.Store.SetDomainMethod(ctx, tx, id, m, value, now.Add(portal.DomainValueLifetime), lang); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, a, AuditDomainMethod, "domain", id, accountID, rec.Name+" "+string(m)); err != nil {
			return err
		}
		rec.Method, rec.RandomValue = m, value
		if m == portal.DCVEmail {
			return s.sendDomainEmailsTx(ctx, tx, a, rec, lang)
		}
		return nil
	})
}

// CheckDomain runs "Check now" for a DNS or HTTP method: at most
// DefaultChecksPerMinute per domain (Limiter). The result is stored (the
// page shows the last one) and audited; a passing check validates the
// domain for 398 days (SBR 4.2.1) and moves waiting recipients on.
func (s *Service) CheckDomain(ctx context.Context, a Actor, accountID, id int64) (Result, error) {
	rec, err := s.Store.Domain(ctx, nil, accountID, id)
	if err != nil {
		return Result{}, err
	}
	now := s.now()
	if rec.Current(now) {
		return Result{}, &portal.Error{Code: portal.EConflict, Key: "val.domain.already_valid", Message: "This domain is validated; nothing to do until its validation expires."}
	}
	if rec.Method == portal.DCVEmail {
		return Result{}, &portal.Error{Code: portal.EConflict, Key: "val.domain.email_no_check", Message: "With the email method, the domain is validated when someone at one of the addresses approves."}
	}
	if !now.Before(rec.ValueExpiresAt) {
		return Result{}, &portal.Error{Code: portal.EConflict, Key: "val.domain.value_expired", Message: "The random value has expired (values are valid for 30 days). Generate a new value."}
	}
	if !s.limiter().Allow(rec.Name, now) {
		return Result{}, &portal.Error{Code: portal.ETooMany, Key: "val.domain.rate_limited", Message: "Too many checks for this domain. Wait a minute and try again."}
	}
	var res Result
	var cerr error
	switch rec.Method {
	case portal.DCVDNSTXT:
		res, cerr = s.Checker.CheckDNSTXT(ctx, rec.Name, rec.RandomValue)
	case portal.DCVDNSCNAME:
		res, cerr = s.Checker.CheckDNSCNAME(ctx, rec.Name, rec.RandomValue, "")
	case portal.DCVHTTP:
		res, cerr = s.Checker.CheckHTTP(ctx, rec.Name, rec.RandomValue)
	}
	if cerr != nil {
		res.OK = false
		if res.Detail == "" {
			res.Detail = "The check could not run to the end."
		}
		var pe *portal.Error
		if errors.As(cerr, &pe) && pe.Code == portal.EInternal {
			return res, cerr
		}
	}
	// the check's end time matters for the record, not its start
	at := s.now()
	check := CheckRecord{At: at, OK: res.OK, Detail: res.Detail, Found: res.Found, Expected: res.Expected}
	err = s.Store.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.Store.SetDomainCheck(ctx, tx, id, check); err != nil {
			return err
		}
		verdict := "not found: "
		if res.OK {
			verdict = "passed: "
		}
		if err := s.audit(ctx, tx, a, AuditDomainCheck, "domain", id, accountID, rec.Name+" "+verdict+res.Detail); err != nil {
			return err
		}
		if !res.OK {
			return nil
		}
		return s.domainValidatedTx(ctx, tx, a, rec, res.Method)
	})
	if err != nil {
		return res, err
	}
	if res.OK {
		s.advance(ctx, accountID)
	}
	return res, nil
}

func (s *Service) domainValidatedTx(ctx context.Context, tx *sql.Tx, a Actor, rec DomainRecord, method string) error {
	now := s.now()
	if err := s.Store.SetDomainValidated(ctx, tx, rec.ID, now, now.Add(portal.DomainValidationReuse), method); err != nil {
		return err
	}
	if err := s.Store.KillEmailTokens(ctx, tx, rec.ID, now); err != nil {
		return err
	}
	return s.audit(ctx, tx, a, AuditDomainValidated, "domain", rec.ID, rec.AccountID, rec.Name+" by "+method)
}

// DomainApproval is what the public approval page shows.
type DomainApproval struct {
	Domain  string
	Org     string
	Email   string
	Expires string
}

// lookupEmailToken finds a live approval link by its token.
func (s *Service) lookupEmailToken(ctx context.Context, q portal.Querier, token string) (EmailToken, DomainRecord, error) {
	if strings.TrimSpace(token) == "" || len(token) > 128 {
		return EmailToken{}, DomainRecord{}, ErrLinkUnknown
	}
	h := tokenHash(token)
	t, err := s.Store.EmailTokenByHash(ctx, q, h)
	if portal.ErrorCode(err) == portal.ENotFound || (err == nil && !portal.TokenEqual(h, t.Hash)) {
		return t, DomainRecord{}, ErrLinkUnknown
	}
	if err != nil {
		return t, DomainRecord{}, err
	}
	switch {
	case !t.UsedAt.IsZero():
		return t, DomainRecord{}, ErrLinkUsed
	case !t.KilledAt.IsZero():
		return t, DomainRecord{}, ErrLinkKilled
	case !s.now().Before(t.ExpiresAt):
		return t, DomainRecord{}, ErrLinkExpired
	}
	d, err := s.Store.Domain(ctx, q, 0, t.DomainID)
	return t, d, err
}

// DomainApprovalInfo checks an approval link without using it (GET).
func (s *Service) DomainApprovalInfo(ctx context.Context, token string) (DomainApproval, error) {
	t, d, err := s.lookupEmailToken(ctx, nil, token)
	if err != nil {
		return DomainApproval{}, err
	}
	org, err := s.Store.Org(ctx, nil, 0, d.OrganizationID)
	if err != nil {
		return DomainApproval{}, err
	}
	return DomainApproval{Domain: d.Name, Org: org.LegalName, Email: t.Email, Expires: t.ExpiresAt.Format("2006-01-02")}, nil
}

// ApproveDomain uses an approval link (POST, single-use): the domain is
// validated by TLS BR 3.2.2.4.4 for 398 days.
func (s *Service) ApproveDomain(ctx context.Context, token, ip string) (DomainApproval, error) {
	var out DomainApproval
	var accountID int64
	err := s.Store.Tx(ctx, func(tx *sql.Tx) error {
		t, d, err := s.lookupEmailToken(ctx, tx, token)
		if err != nil {
			return err
		}
		if err := s.Store.UseEmailToken(ctx, tx, t.ID, s.now()); err != nil {
			return err
		}
		out = DomainApproval{Domain: d.Name, Email: t.Email}
		accountID = d.AccountID
		a := Actor{Email: t.Email, IP: ip}
		if d.Current(s.now()) {
			return nil
		}
		return s.domainValidatedTx(ctx, tx, a, d, MethodConstructedEmail+" ("+t.Email+")")
	})
	if err != nil {
		return out, err
	}
	s.advance(ctx, accountID)
	return out, nil
}

// DomainCovered reports whether a current validated domain of the
// organization covers the address's domain (subdomains included).
func (s *Service) DomainCovered(ctx context.Context, accountID, orgID int64, email string) (bool, error) {
	all, err := s.Store.ListDomains(ctx, nil, accountID)
	if err != nil {
		return false, err
	}
	ed := portal.EmailDomain(email)
	now := s.now()
	for _, d := range all {
		if d.OrganizationID == orgID && d.Current(now) && portal.DomainCovers(d.Name, ed) {
			return true, nil
		}
	}
	return false, nil
}

// CheckCAA is the check the CA calls before issuing for an address
// (SBR 4.2.2.1, RFC 9495 issuemail with RFC 8659 tree climbing). allowed is
// false with a clear reason when CAA forbids this CA, and also when the
// lookup fails (err non-nil): never issue then. A refusal is written to the
// audit log (SBR 4.2.2.1: prevented issuance is logged).
func (s *Service) CheckCAA(ctx context.Context, accountID int64, email string) (allowed bool, reason string, err error) {
	allowed, reason, err = s.Checker.CheckCAAIssueMail(ctx, email)
	if !allowed {
		if aerr := s.audit(ctx, nil, Actor{}, AuditCAARefused, "email", 0, accountID, email+": "+reason); aerr != nil {
			s.log().Error("audit CAA refusal", "err", aerr)
		}
	}
	return allowed, reason, err
}
