package portal

import "time"

// OrgStatus is an organization's S/MIME validation state.
type OrgStatus string

const (
	OrgDraft     OrgStatus = "draft"
	OrgPending   OrgStatus = "pending"
	OrgValidated OrgStatus = "validated"
	OrgRejected  OrgStatus = "rejected"
	// OrgExpired is never stored: a validated organization whose
	// ExpiresAt has passed is expired (SBR 4.2.1: 825-day reuse).
	OrgExpired OrgStatus = "expired"
)

// Contact is an organization or technical contact.
type Contact struct {
	Name, Email, Phone string
}

// Organization is a customer's organization, validated by CA staff
// (SBR 3.2.3) before it may appear in a certificate.
type Organization struct {
	ID           int64
	AccountID    int64
	LegalName    string
	AssumedName  string
	Address      string
	City         string
	PostalCode   string
	Country      string // ISO 3166-1 alpha-2
	Phone        string // verified phone number the agent calls
	Registration string // registration number for organizationIdentifier (SBR 7.1.4.2.2 d)
	OrgContact   Contact
	TechContact  Contact
	Status       OrgStatus // stored status; use State(now) for display
	SubmittedAt  time.Time
	ValidatedAt  time.Time
	ExpiresAt    time.Time
	ValidatedBy  string
	Notes        string
	RejectReason string
	OrderID      int64 // validation started as part of this order, 0 for prevalidation
	CreatedAt    time.Time
}

// State returns the status at time now, turning a validated organization
// past its expiry into expired.
func (o Organization) State(now time.Time) OrgStatus {
	if o.Status == OrgValidated && !now.Before(o.ExpiresAt) {
		return OrgExpired
	}
	return o.Status
}

// Current reports whether the organization's validation can be relied on now.
func (o Organization) Current(now time.Time) bool { return o.State(now) == OrgValidated }

// DCVMethod is a domain control validation method.
type DCVMethod string

const (
	DCVEmail    DCVMethod = "email"     // TLS BR 3.2.2.4.4 constructed email
	DCVDNSTXT   DCVMethod = "dns_txt"   // TLS BR 3.2.2.4.7
	DCVDNSCNAME DCVMethod = "dns_cname" // TLS BR 3.2.2.4.7
	DCVHTTP     DCVMethod = "http"      // TLS BR 3.2.2.4.18
)

// DomainStatus of a domain's validation.
type DomainStatus string

const (
	DomainPending   DomainStatus = "pending"
	DomainValidated DomainStatus = "validated"
	DomainExpired   DomainStatus = "expired" // derived, never stored
)

// Domain is an email domain of an organization.
type Domain struct {
	ID             int64
	AccountID      int64
	OrganizationID int64
	Name           string
	Method         DCVMethod
	// RandomValue is published by the customer in DNS or on the web
	// server, so it is not a secret and is kept readable; email links
	// are separate tokens, stored hashed.
	RandomValue    string
	ValueExpiresAt time.Time
	Status         DomainStatus
	ValidatedAt    time.Time
	ExpiresAt      time.Time
	OrderID        int64 // validation as part of this order; 0 for prevalidation
	CreatedAt      time.Time
}

// State returns the domain's status at now (398-day reuse, SBR 4.2.1).
func (d Domain) State(now time.Time) DomainStatus {
	if d.Status == DomainValidated && !now.Before(d.ExpiresAt) {
		return DomainExpired
	}
	return d.Status
}

// Current reports whether the domain's validation can be relied on now.
func (d Domain) Current(now time.Time) bool { return d.State(now) == DomainValidated }
