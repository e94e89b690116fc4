package portal

import "time"

// OrderStatus is an order's overall state.
type OrderStatus string

const (
	OrderPending   OrderStatus = "pending"   // tasks open or certificates to issue
	OrderCompleted OrderStatus = "completed" // every recipient issued (or its open plan period closed)
	OrderCancelled OrderStatus = "cancelled"
)

// RecipientStatus is where one certificate of an order stands.
type RecipientStatus string

const (
	RecipientAwaitingOrg     RecipientStatus = "awaiting_organization_validation"
	RecipientAwaitingDomain  RecipientStatus = "awaiting_domain_validation"
	RecipientAwaitingMailbox RecipientStatus = "awaiting_mailbox_validation"
	RecipientAwaitingKeyGen  RecipientStatus = "awaiting_key_generation"
	RecipientReady           RecipientStatus = "ready" // validated with a CSR: to be issued
	RecipientHeld            RecipientStatus = "held"  // issuance held for review (lint or CAA)
	RecipientIssued          RecipientStatus = "issued"
	RecipientCancelled       RecipientStatus = "cancelled"
)

// PaymentMethod of an order.
type PaymentMethod string

const (
	PayCard     PaymentMethod = "card"
	PayContract PaymentMethod = "contract"
	PayBalance  PaymentMethod = "balance"
)

// SignatureHash names the hash the certificate is signed with.
type SignatureHash string

const (
	SHA256 SignatureHash = "sha256"
	SHA384 SignatureHash = "sha384"
	SHA512 SignatureHash = "sha512"
)

// Order is one request for one or more certificates.
type Order struct {
	ID               int64
	AccountID        int64
	UserID           int64
	Product          ProductID
	OrganizationID   int64
	SignatureHash    SignatureHash
	PeriodStart      time.Time
	PeriodEnd        time.Time // the order covers up to here; certificates never pass it
	AutoRenew        bool
	PaymentMethod    PaymentMethod
	PaymentRef       string // card authorization reference
	AmountCents      int64
	AdditionalEmails []string
	AgreementVersion string
	AgreedAt         time.Time
	Status           OrderStatus
	CreatedAt        time.Time
	CancelledAt      time.Time
	RenewedFrom      int64
	Recipients       []Recipient
}

// Recipient is one certificate of an order.
type Recipient struct {
	ID             int64
	OrderID        int64
	AccountID      int64
	Email          string
	CommonName     string
	CNFromName     bool
	CSR            string // PEM, public data; empty for browser KeyGen
	Status         RecipientStatus
	HeldReason     string
	CertificateID  int64 // the current certificate, 0 when none
	PlanPeriod     int   // 1 for the first certificate of a plan, then 2, 3...
	NextIssueAfter time.Time
}

// Certificate is an issued certificate.
type Certificate struct {
	ID               int64
	AccountID        int64
	OrderID          int64
	RecipientID      int64
	PlanPeriod       int
	Serial           string // upper-case hex
	Status           string // issuing, issued, revoked
	DER              []byte
	Subject          string
	Emails           []string
	Profile          string
	NotBefore        time.Time
	NotAfter         time.Time
	FingerprintSHA   string
	SPKISHA256       string // hex SHA-256 of the DER subjectPublicKeyInfo (store: from DER when empty)
	RevokedAt        time.Time
	RevocationReason int
	CreatedAt        time.Time
}
