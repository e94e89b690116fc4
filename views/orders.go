package views

import "strconv"

// Option is a select option.
type Option struct {
	Value, Label string
	Note         string
}

// RecipientRow is one recipient block of the order form.
type RecipientRow struct {
	Index      int
	CNFromName bool
	Name       string
	Email      string
	HasCSR     bool
	CSR        string
}

// Field name of a recipient's field.
func (r RecipientRow) F(name string) string { return "r" + strconv.Itoa(r.Index) + "_" + name }

// OrderFormVM is the "Request a client certificate" page.
type OrderFormVM struct {
	Form           Form
	Products       []ProductOption
	Product        string
	Legacy         bool
	NeedsOrg       bool
	PersonalName   bool
	CurrentOrgs    []Option
	OtherOrgs      []Option // validation as part of the order
	Recipients     []RecipientRow
	PerCert        string
	Total          string
	Plan           bool
	Balance        string
	CardOnFile     string // "Visa •••• 4242" or ""
	ContractActive bool
	IdemKey        string
	Agreement      string
}

// ProductOption carries what the page script needs to react instantly.
type ProductOption struct {
	Value, Label string
	Legacy       bool
	NeedsOrg     bool
	PersonalName bool
	PriceCents   int64 // per certificate per year, for this account
}

// OrderListVM is the orders list.
type OrderListVM struct {
	Orders   []OrderRow
	Status   string
	Product  string
	Email    string
	Products []Option
	Total    int
}

// OrderRow is one line of the orders list.
type OrderRow struct {
	ID         int64
	Product    string
	Created    string
	Status     string
	StatusCls  string
	Recipients string
}

// OrderVM is an order's page.
type OrderVM struct {
	ID          int64
	Product     string
	Org         string
	Status      string
	StatusCls   string
	Created     string
	PeriodEnd   string
	Hash        string
	Payment     string
	Amount      string
	AutoRenew   bool
	Recipients  []OrderRecipientVM
	Tasks       []TaskVM
	CanCancel   bool
	History     []string
	Additional  string
	JustCreated bool
	// Plan: the period is longer than one certificate may last (825 days);
	// the next certificate is issued automatically inside it.
	Plan           bool
	RenewalOrderID int64
	RenewalFailure string
}

// OrderRecipientVM is a recipient on the order page.
type OrderRecipientVM struct {
	ID         int64
	Email      string
	CommonName string
	Status     string
	StatusCls  string
	CertID     int64
	CanResend  bool
	// ResendRevokes: the certificate was made through a KeyGen link; a
	// new link revokes it (the key may have been lost).
	ResendRevokes bool
	HeldReason    string
}

// TaskVM is one "next step" on the order page.
type TaskVM struct {
	Title string
	Body  string
	Href  string
	Link  string
	Done  bool
	// ResendEmail, when set, offers a button that sends the mailbox
	// confirmation link to this address again.
	ResendEmail string
}
