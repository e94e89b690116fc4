package ca

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"certdesk/internal/portal"
)

// IssueRequest is everything a subscriber certificate is made from. All of
// it must already be validated by the ordering layer (SBR 3.2); Issue
// checks form and profile rules, not the truth of the data.
type IssueRequest struct {
	Product portal.Product
	// Emails: validated mailbox addresses, the first is the primary one
	// (commonName when the CN is an address). Every one becomes an
	// rfc822Name (SBR 7.1.4.2.1).
	Emails []string
	// CommonNameFromName: the CN is CommonName (a personal name for
	// sponsor-validated products, the organization name for
	// organization-validated ones) instead of the primary address.
	CommonNameFromName bool
	CommonName         string
	// GivenName and Surname (sponsor-validated only). When empty they are
	// derived from CommonName (last word = surname).
	GivenName, Surname string
	// Organization (organization- and sponsor-validated only).
	// OrgIdentifier is the SBR 7.1.4.2.2 (d) form, e.g. "NTRNL-12345678".
	OrgName, OrgIdentifier, OrgCountry string

	PublicKey     crypto.PublicKey
	SignatureHash portal.SignatureHash // "" means the issuer's default

	// NotBefore defaults to now. NotAfter defaults to and is capped at
	// NotBefore + 825 days (SBR 6.3.2), at PeriodEnd when set, and at the
	// issuing CA's own expiry.
	NotBefore, NotAfter, PeriodEnd time.Time
	// Serial: a serial recorded before issuance (from NewSerial), or nil
	// for a new one.
	Serial *big.Int

	// mutate lets tests break the template after it is built, to prove the
	// linter stops it before anything is signed.
	mutate func(*x509.Certificate)
}

// Issued is a signed subscriber certificate.
type Issued struct {
	Certificate *x509.Certificate
	DER         []byte
	Serial      *big.Int
	NotBefore   time.Time
	NotAfter    time.Time
	// Chain: the CA certificates above the leaf (issuing CA first, root last
	// when known), DER.
	Chain [][]byte
}

// PEM returns the certificate in PEM.
func (is *Issued) PEM() []byte { return pemCert(is.DER) }

// FullChainPEM returns the leaf followed by its chain, PEM.
func (is *Issued) FullChainPEM() []byte {
	out := pemCert(is.DER)
	for _, c := range is.Chain {
		out = append(out, pemCert(c)...)
	}
	return out
}

// NewSerial returns a fresh serial: 128 bits from crypto/rand, positive
// (SBR 7.1: greater than zero, less than 2^159, at least 64 CSPRNG bits).
func NewSerial() *big.Int {
	b := make([]byte, 16)
	for {
		if _, err := rand.Read(b); err != nil {
			panic("ca: crypto/rand failed: " + err.Error())
		}
		n := new(big.Int).SetBytes(b)
		if n.Sign() > 0 {
			return n
		}
	}
}

var (
	oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}
	oidGivenName              = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSurname                = asn1.ObjectIdentifier{2, 5, 4, 4}
)

// orgIdentifierRE: SBR 7.1.4.2.2 (d): 3-letter scheme, 2-letter country,
// optional "+" subdivision, "-" reference; or GOVcc[+sub] / INTXG.
var orgIdentifierRE = regexp.MustCompile(`^(?:([A-Z]{3})([A-Z]{2})(?:\+[A-Z0-9]{1,3})?-[^\s].*|GOV([A-Z]{2})(?:\+[A-Z0-9]{1,3})?|INTXG)$`)

func invalid(field, key, msg string) *portal.Error { return portal.FieldError(field, key, msg) }

// textValue checks a subject attribute: printable UTF-8, 1 to max
// characters, not only metadata like ".", "-" or " " (SBR 7.1.4.2).
func textValue(field, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalid(field, "ca."+field+".required", "This value is required.")
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return "", invalid(field, "ca."+field+".too_long", fmt.Sprintf("At most %d characters.", max))
	}
	meaningful := false
	for _, r := range s {
		if unicode.IsControl(r) || !unicode.IsPrint(r) {
			return "", invalid(field, "ca."+field+".invalid", "This value contains characters that cannot be used.")
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			meaningful = true
		}
	}
	if !meaningful {
		return "", invalid(field, "ca."+field+".invalid", "This value must contain letters or digits.")
	}
	return s, nil
}

// splitPersonalName derives givenName and surname from a full name: the last
// word is the surname; a single name goes into surname (SBR 7.1.4.2.2 e).
func splitPersonalName(name string) (given, surname string) {
	f := strings.Fields(name)
	switch len(f) {
	case 0:
		return "", ""
	case 1:
		return "", f[0]
	}
	return strings.Join(f[:len(f)-1], " "), f[len(f)-1]
}

// signatureAlgorithm maps an ordered hash to one this issuer may use
// (SBR 7.1.3.2.1 RSA: SHA-256/384/512; 7.1.3.2.2 ECDSA P-256: SHA-256 only,
// P-384: SHA-384 only). PKCS#1 v1.5 for RSA: byte-identical encodings.
func (a *Authority) signatureAlgorithm(h portal.SignatureHash) (x509.SignatureAlgorithm, error) {
	kt, err := issuerKeyType(a.issuer.PublicKey)
	if err != nil {
		return 0, err
	}
	switch kt {
	case KeyP256:
		if h == "" || h == portal.SHA256 {
			return x509.ECDSAWithSHA256, nil
		}
	case KeyP384:
		if h == "" || h == portal.SHA384 {
			return x509.ECDSAWithSHA384, nil
		}
	default:
		switch h {
		case "", portal.SHA256:
			return x509.SHA256WithRSA, nil
		case portal.SHA384:
			return x509.SHA384WithRSA, nil
		case portal.SHA512:
			return x509.SHA512WithRSA, nil
		}
	}
	allowed := a.AllowedHashes()
	names := make([]string, len(allowed))
	for i, x := range allowed {
		names[i] = strings.ToUpper(string(x))
	}
	return 0, &portal.Error{Code: portal.EInvalid, Field: "signature_hash", Key: "ca.signature_hash",
		Message: fmt.Sprintf("The signature hash %q is not available with this CA's %s key; choose %s.",
			string(h), strings.ToUpper(kt), strings.Join(names, " or ")),
		Data: map[string]any{"allowed": names}}
}

// buildTemplate makes the subscriber certificate template for a request.
func (a *Authority) buildTemplate(req IssueRequest) (*x509.Certificate, error) {
	prof, err := ProfileFor(req.Product)
	if err != nil {
		return nil, err
	}
	if req.PublicKey == nil {
		return nil, csrError(KeyCSREmpty)
	}
	if err := CheckPublicKey(req.PublicKey); err != nil {
		return nil, err
	}
	sigAlg, err := a.signatureAlgorithm(req.SignatureHash)
	if err != nil {
		return nil, err
	}

	// Addresses: SBR 7.1.4.2.1, every one as rfc822Name, no duplicates.
	if len(req.Emails) == 0 {
		return nil, invalid("emails", "ca.emails.required", "At least one email address is required.")
	}
	if len(req.Emails) > 100 {
		return nil, invalid("emails", "ca.emails.too_many", "At most 100 email addresses.")
	}
	var emails []string
	seen := map[string]bool{}
	for _, e := range req.Emails {
		n, ok := portal.NormalizeEmail(e)
		if !ok {
			return nil, invalid("emails", "ca.emails.invalid", "An email address is not valid.")
		}
		for _, r := range n {
			if r > unicode.MaxASCII {
				// rfc822Name is an IA5String; SmtpUTF8Mailbox is not offered.
				return nil, invalid("emails", "ca.emails.non_ascii", "Email addresses with non-ASCII characters are not supported.")
			}
		}
		k := strings.ToLower(n)
		if seen[k] {
			return nil, invalid("emails", "ca.emails.duplicate", "An email address is listed twice.")
		}
		seen[k] = true
		emails = append(emails, n)
	}
	primary := emails[0]

	// Subject: SBR 7.1.4.2.2 to 7.1.4.2.5.
	var subj pkix.Name
	emailCN := func() {
		if len(primary) <= 64 { // RFC 5280 ub-common-name; else no CN (it is optional)
			subj.CommonName = primary
		}
	}
	var orgName string
	if prof.OrgInSubject {
		if orgName, err = textValue("org_name", req.OrgName, 64); err != nil {
			return nil, err
		}
		oi := strings.TrimSpace(req.OrgIdentifier)
		m := orgIdentifierRE.FindStringSubmatch(oi)
		if m == nil || len(oi) > 64 {
			return nil, invalid("org_identifier", "ca.org_identifier.invalid",
				"The organization identifier must look like NTRNL-12345678 (scheme, country, hyphen, registration number).")
		}
		subj.Organization = []string{orgName}
		subj.ExtraNames = append(subj.ExtraNames, pkix.AttributeTypeAndValue{Type: oidOrganizationIdentifier, Value: oi})
		if c := strings.TrimSpace(req.OrgCountry); c != "" {
			if len(c) != 2 || strings.ToUpper(c) != c || !isLetters(c) {
				return nil, invalid("org_country", "ca.org_country.invalid", "The country must be a two-letter ISO 3166-1 code.")
			}
			// SBR 7.1.4.2.2 (d) note 1: the identifier's country matches
			// countryName, except for LEI (XG) and INT schemes; VAT may
			// use the EU prefix EL for Greece.
			idc := m[2] + m[3]
			if m[1] == "LEI" || oi == "INTXG" || (m[1] == "VAT" && idc == "EL" && c == "GR") {
				idc = c
			}
			if idc != c {
				return nil, invalid("org_identifier", "ca.org_identifier.country",
					"The organization identifier's country does not match the organization's country.")
			}
			subj.Country = []string{c}
		}
	} else if req.OrgName != "" || req.OrgIdentifier != "" {
		// SBR 7.1.4.2.3: never an organization in a mailbox-validated subject.
		return nil, invalid("org_name", "ca.org_name.not_allowed", "This product does not include the organization in the certificate.")
	}

	switch {
	case prof.PersonalName:
		given, sur := strings.TrimSpace(req.GivenName), strings.TrimSpace(req.Surname)
		if given == "" && sur == "" {
			given, sur = splitPersonalName(req.CommonName)
		}
		if sur == "" && given == "" {
			return nil, invalid("common_name", "ca.personal_name.required",
				"A sponsor-validated certificate needs the recipient's name.")
		}
		if given != "" {
			if given, err = textValue("given_name", given, 64); err != nil {
				return nil, err
			}
			subj.ExtraNames = append(subj.ExtraNames, pkix.AttributeTypeAndValue{Type: oidGivenName, Value: given})
		}
		if sur != "" {
			if sur, err = textValue("surname", sur, 64); err != nil {
				return nil, err
			}
			subj.ExtraNames = append(subj.ExtraNames, pkix.AttributeTypeAndValue{Type: oidSurname, Value: sur})
		}
		if req.CommonNameFromName {
			// SBR 7.1.4.2.2 (a): sponsor-validated CN may be the Personal Name.
			cn := req.CommonName
			if strings.TrimSpace(cn) == "" {
				cn = strings.TrimSpace(given + " " + sur)
			}
			if subj.CommonName, err = textValue("common_name", cn, 64); err != nil {
				return nil, err
			}
		} else {
			emailCN()
		}
	case prof.OrgInSubject: // organization-validated
		if req.GivenName != "" || req.Surname != "" {
			return nil, invalid("common_name", "ca.personal_name.not_allowed", "This product does not include a personal name.")
		}
		if req.CommonNameFromName {
			// SBR 7.1.4.2.2 (a): organization-validated CN is
			// organizationName or a mailbox address.
			if cn := strings.TrimSpace(req.CommonName); cn != "" && cn != orgName {
				return nil, invalid("common_name", "ca.personal_name.not_allowed",
					"For this product the common name is the email address or the organization name.")
			}
			subj.CommonName = orgName
		} else {
			emailCN()
		}
	default: // mailbox-validated: CN is a mailbox address, nothing else
		if req.CommonNameFromName || req.GivenName != "" || req.Surname != "" {
			return nil, invalid("common_name", "ca.personal_name.not_allowed",
				"A mailbox-validated certificate cannot contain a name; its common name is the email address.")
		}
		emailCN()
	}

	// Validity: SBR 6.3.2, at most 825 days, counted inclusively
	// (notAfter - notBefore + 1 s); never past the order's period or the
	// issuing CA.
	now := a.clock.Now().UTC().Truncate(time.Second)
	nb := req.NotBefore.UTC().Truncate(time.Second)
	if req.NotBefore.IsZero() {
		nb = now
	}
	if nb.Before(now.Add(-48 * time.Hour)) {
		return nil, invalid("validity", "ca.validity.backdated", "The certificate cannot start more than 48 hours in the past.")
	}
	maxNA := nb.Add(portal.MaxCertValidity - time.Second)
	na := req.NotAfter.UTC().Truncate(time.Second)
	if req.NotAfter.IsZero() || na.After(maxNA) {
		na = maxNA
	}
	if !req.PeriodEnd.IsZero() && na.After(req.PeriodEnd) {
		na = req.PeriodEnd.UTC().Truncate(time.Second)
	}
	if na.After(a.issuer.NotAfter) {
		na = a.issuer.NotAfter
	}
	if !na.After(nb) {
		return nil, invalid("validity", "ca.validity.empty", "The certificate's validity period would be empty.")
	}

	serial := req.Serial
	if serial == nil {
		serial = NewSerial()
	}
	// SBR 7.1: positive, below 2^159, at least 64 bits of CSPRNG output.
	if serial.Sign() <= 0 || serial.BitLen() >= 160 || serial.BitLen() < 64 {
		return nil, fmt.Errorf("ca: serial must be positive, at least 64 and below 160 bits (got %d bits)", serial.BitLen())
	}

	ski, err := subjectKeyID(req.PublicKey)
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber:          new(big.Int).Set(serial),
		Subject:               subj,
		NotBefore:             nb,
		NotAfter:              na,
		SignatureAlgorithm:    sigAlg,
		KeyUsage:              prof.KeyUsage(req.PublicKey),
		ExtKeyUsage:           append([]x509.ExtKeyUsage(nil), prof.ExtKeyUsage...),
		BasicConstraintsValid: true, // SBR 7.1.2.3 (d): cA false
		EmailAddresses:        emails,
		Policies:              []x509.OID{prof.Policy},
		CRLDistributionPoints: []string{a.CRLURL()},
		OCSPServer:            []string{a.OCSPURL()},
		IssuingCertificateURL: []string{a.IssuingCertURL()},
		SubjectKeyId:          ski, // SBR 7.1.2.3 (n); Go sets it on CAs only
	}
	if req.mutate != nil {
		req.mutate(t)
	}
	return t, nil
}

func isLetters(s string) bool {
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// subjectKeyID is RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey
// BIT STRING.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	h := sha1.Sum(info.PublicKey.Bytes)
	return h[:], nil
}

// Issue builds, lints and signs a subscriber certificate (SBR 4.3.1.2:
// pre-issuance linting). A certificate with any zlint error or warning, or
// failing certdesk's own checks, is refused with *LintError before the
// issuing key signs anything. Request problems are *portal.Error (EInvalid).
//
// The CA key signs the very tbsCertificate bytes that were linted (no
// second CreateCertificate): lintedTBS captures them from
// x509.CreateCertificate without signing, signTBS signs them.
func (a *Authority) Issue(req IssueRequest) (*Issued, error) {
	t, err := a.buildTemplate(req)
	if err != nil {
		return nil, err
	}
	tbs, err := a.lintedTBS(t, req.PublicKey)
	if err != nil {
		return nil, err
	}
	return a.signTBS(tbs, t.SignatureAlgorithm)
}

// signatureHash is the digest a signature algorithm signs (PKCS#1 v1.5
// and ECDSA only: the algorithms signatureAlgorithm chooses).
func signatureHash(alg x509.SignatureAlgorithm) (crypto.Hash, error) {
	switch alg {
	case x509.SHA256WithRSA, x509.ECDSAWithSHA256:
		return crypto.SHA256, nil
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384:
		return crypto.SHA384, nil
	case x509.SHA512WithRSA:
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("ca: no signing for algorithm %v", alg)
}

// signTBS signs linted tbsCertificate bytes with the issuing key and
// assembles the certificate. Like x509.CreateCertificate it checks the new
// signature with the issuing CA's public key before returning (a faulty
// signer or a fault during signing must not yield a certificate); it also
// checks that the parsed certificate's TBS is the linted bytes.
func (a *Authority) signTBS(tbs []byte, alg x509.SignatureAlgorithm) (*Issued, error) {
	h, err := signatureHash(alg)
	if err != nil {
		return nil, err
	}
	sig, err := crypto.SignMessage(a.signer, rand.Reader, tbs, h)
	if err != nil {
		return nil, fmt.Errorf("ca: signing: %w", err)
	}
	der, err := assembleCertificate(tbs, sig)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parsing the signed certificate: %w", err)
	}
	// What was signed must be what was linted.
	if !bytes.Equal(cert.RawTBSCertificate, tbs) || cert.SignatureAlgorithm != alg {
		return nil, fmt.Errorf("ca: the signed certificate differs from the linted one (serial %x); it must not be used", cert.SerialNumber)
	}
	if err := cert.CheckSignatureFrom(a.issuer); err != nil {
		return nil, fmt.Errorf("ca: the new certificate does not verify: %w", err)
	}
	return &Issued{Certificate: cert, DER: der, Serial: cert.SerialNumber,
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, Chain: a.ChainDER()}, nil
}
