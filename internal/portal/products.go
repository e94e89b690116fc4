package portal

import "time"

// CertType is an SBR 7.1.6.1 certificate type.
type CertType string

// Generation is an SBR certificate generation. The legacy generation may no
// longer be issued (SBR 7.1.6.1), so every product maps to strict or
// multipurpose.
type Generation string

const (
	MailboxValidated      CertType = "mailbox"
	OrganizationValidated CertType = "organization"
	SponsorValidated      CertType = "sponsor"

	Strict       Generation = "strict"
	Multipurpose Generation = "multipurpose"
)

// PolicyOID returns the SBR reserved policy identifier for a type and
// generation: 2.23.140.1.5.<type>.<generation> (SBR 7.1.6.1).
func PolicyOID(t CertType, g Generation) []int {
	tt := map[CertType]int{MailboxValidated: 1, OrganizationValidated: 2, SponsorValidated: 3}[t]
	gg := map[Generation]int{Multipurpose: 2, Strict: 3}[g]
	return []int{2, 23, 140, 1, 5, tt, gg}
}

// KeyUsage says what the certificate's key may do.
type KeyUsage string

const (
	DualUse     KeyUsage = "dual"    // signing and encryption
	SigningOnly KeyUsage = "signing" // digitalSignature (+ nonRepudiation) only
)

// ProductID is the API's product identifier.
type ProductID string

const (
	ProductIndividual       ProductID = "secure_email_mailbox"
	ProductBusiness         ProductID = "secure_email_sponsor"
	ProductOrganization     ProductID = "secure_email_organization"
	ProductPremium          ProductID = "client_premium"
	ProductEmailSecPlus     ProductID = "client_email_security_plus"
	ProductDigitalSignature ProductID = "client_digital_signature_plus"
	ProductClient1          ProductID = "client_1"
)

// Product is one entry of the catalogue. The catalogue is the single place
// that says what each product needs; the order form, the API, validation and
// the CA all read it.
type Product struct {
	ID   ProductID
	Name string // English display name; views translate by ID
	// Legacy products show the seed's notice recommending Secure Email.
	Legacy     bool
	Type       CertType
	Generation Generation
	// NeedsOrganization: the order names an organization that must be
	// validated (SBR 3.2.3) and owns the recipients' domains.
	NeedsOrganization bool
	// OrgInSubject: organizationName and organizationIdentifier go into the
	// subject (organization- and sponsor-validated types, SBR 7.1.4.2.2).
	OrgInSubject bool
	// PersonalName: the common name may be the recipient's name, and
	// givenName/surname are included (sponsor-validated only).
	PersonalName bool
	// MailboxValidation: each address is validated by a link sent to the
	// address itself (SBR 3.2.2.2), not by domain control.
	MailboxValidation bool
	KeyUsage          KeyUsage
	// PriceCents is the list price per certificate per year, in euro cents.
	PriceCents int64
}

// Products is the catalogue, in the order the form lists it.
//
// Mapping to SBR profiles (SBR 7.1.6.1; the legacy generation is not used):
//
//	secure_email_mailbox            Mailbox-validated      strict        no org, CN = email
//	secure_email_sponsor            Sponsor-validated      strict        org + personal name
//	secure_email_organization       Organization-validated strict        org, CN = email
//	client_premium                  Sponsor-validated      multipurpose  org + personal name
//	client_email_security_plus      Mailbox-validated      multipurpose  org owns domain, CN = email
//	client_digital_signature_plus   Sponsor-validated      multipurpose  signing only
//	client_1                        Mailbox-validated      strict        org owns domain, CN = email
var Products = []Product{
	{ID: ProductIndividual, Name: "Secure Email for Individual", Type: MailboxValidated, Generation: Strict,
		MailboxValidation: true, KeyUsage: DualUse, PriceCents: 2900},
	{ID: ProductBusiness, Name: "Secure Email for Business", Type: SponsorValidated, Generation: Strict,
		NeedsOrganization: true, OrgInSubject: true, PersonalName: true, KeyUsage: DualUse, PriceCents: 4900},
	{ID: ProductOrganization, Name: "Secure Email for Organization", Type: OrganizationValidated, Generation: Strict,
		NeedsOrganization: true, OrgInSubject: true, KeyUsage: DualUse, PriceCents: 3900},
	{ID: ProductPremium, Name: "Premium", Legacy: true, Type: SponsorValidated, Generation: Multipurpose,
		NeedsOrganization: true, OrgInSubject: true, PersonalName: true, KeyUsage: DualUse, PriceCents: 5900},
	{ID: ProductEmailSecPlus, Name: "Email Security Plus", Legacy: true, Type: MailboxValidated, Generation: Multipurpose,
		NeedsOrganization: true, KeyUsage: DualUse, PriceCents: 3500},
	{ID: ProductDigitalSignature, Name: "Digital Signature Plus", Legacy: true, Type: SponsorValidated, Generation: Multipurpose,
		NeedsOrganization: true, OrgInSubject: true, PersonalName: true, KeyUsage: SigningOnly, PriceCents: 4500},
	{ID: ProductClient1, Name: "Client 1 S/MIME", Legacy: true, Type: MailboxValidated, Generation: Strict,
		NeedsOrganization: true, KeyUsage: DualUse, PriceCents: 2500},
}

// ProductByID looks a product up; ok is false for an unknown id.
func ProductByID(id ProductID) (Product, bool) {
	for _, p := range Products {
		if p.ID == id {
			return p, true
		}
	}
	return Product{}, false
}

// Validity and reuse windows, in one place.
const (
	// SBR 6.3.2: a subscriber certificate is valid at most 825 days.
	MaxCertValidity = 825 * 24 * time.Hour
	// SBR 3.2.3 / 4.2.1: organization validation data reused up to 825 days.
	OrgValidationReuse = 825 * 24 * time.Hour
	// SBR 4.2.1 / TLS BR 4.2.1: domain validation reused up to 398 days.
	DomainValidationReuse = 398 * 24 * time.Hour
	// SBR 3.2.2.2: a mailbox random value is valid at most 24 hours.
	MailboxValueLifetime = 24 * time.Hour
	// Mailbox validation reused for 30 days (SBR 4.2.1).
	MailboxValidationReuse = 30 * 24 * time.Hour
	// TLS BR 3.2.2.4.4 / 3.2.2.4.7 / 3.2.2.4.18: random values up to 30 days.
	DomainValueLifetime = 30 * 24 * time.Hour
	// Voicemail verification codes for organization validation.
	OrgCodeLifetime = 7 * 24 * time.Hour
	// KeyGen links.
	KeyGenLinkLifetime = 30 * 24 * time.Hour
	// Longest period an order can cover.
	MaxOrderPeriod = 3 * 366 * 24 * time.Hour
)
