// Package ordering is the orchestrator: it takes an order (from the form
// or the API), checks it against the product rules, stores it with its
// payment authorization and validation tasks in one transaction, and moves
// each recipient through its states until a certificate is issued. It is
// the one place that knows the order's states.
package ordering

import (
	"crypto"
	"fmt"
	"strconv"
	"strings"
	"time"

	"certdesk/internal/portal"
)

// Validity choices of the form.
const (
	Validity1Y         = "1y"
	Validity2Y         = "2y"
	Validity3Y         = "3y"
	ValidityCustomDate = "custom_date"
	ValidityCustomDays = "custom_days"
)

// MaxRecipients bounds one order.
const MaxRecipients = 100

// MaxAdditionalEmails bounds the notification list.
const MaxAdditionalEmails = 10

// AgreementVersion is the Certificate Services Agreement in force.
const AgreementVersion = "2026-11"

// RecipientInput is one "certificate to request".
type RecipientInput struct {
	CNFromName bool   // common name from the name, else from the email
	Name       string // Recipient name (common name)
	Email      string
	HasCSR     bool // "I have my CSR"; false = generate in the browser
	CSR        string
}

// Card is card data typed into the form; never stored.
type Card struct {
	Number, Expiry, CVC, Name string
	OnFile                    bool // use the account's card on file
}

// Input is an order as submitted by the form or the API.
type Input struct {
	Product          portal.ProductID
	OrganizationID   int64
	SignatureHash    portal.SignatureHash
	Validity         string
	CustomDate       string // YYYY-MM-DD
	CustomDays       string
	AutoRenew        bool
	Recipients       []RecipientInput
	AdditionalEmails string
	PaymentMethod    portal.PaymentMethod
	Card             Card
	Agreed           bool
	IdempotencyKey   string
	Lang             string
}

// Field names, shared by the form and the API's error "field" values.
const (
	FieldProduct    = "product"
	FieldOrg        = "organization"
	FieldHash       = "signature_hash"
	FieldValidity   = "validity"
	FieldCustomDate = "custom_date"
	FieldCustomDays = "custom_days"
	FieldAdditional = "additional_emails"
	FieldPayment    = "payment_method"
	FieldAgree      = "agree"
	FieldRecipients = "recipients"
)

// RecipientField names a recipient's field: r0_email, r1_csr...
func RecipientField(i int, name string) string { return "r" + strconv.Itoa(i) + "_" + name }

// Period returns the order's period end for the validity choice, counted
// from now. Dates in the past or beyond 3 years are refused.
func Period(now time.Time, validity, customDate, customDays string) (time.Time, error) {
	day := 24 * time.Hour
	switch validity {
	case Validity1Y:
		return now.Add(365 * day), nil
	case Validity2Y:
		return now.Add(730 * day), nil
	case Validity3Y:
		return now.Add(1095 * day), nil
	case ValidityCustomDate:
		t, err := time.Parse("2006-01-02", strings.TrimSpace(customDate))
		if err != nil {
			return time.Time{}, portal.FieldError(FieldCustomDate, "order.date_invalid", "Enter a date as YYYY-MM-DD.")
		}
		end := t.Add(day - time.Second) // valid through the chosen day
		if !end.After(now.Add(day)) {
			return time.Time{}, portal.FieldError(FieldCustomDate, "order.date_past", "Choose a date after tomorrow.")
		}
		if end.After(now.AddDate(3, 0, 0)) {
			return time.Time{}, portal.FieldError(FieldCustomDate, "order.date_too_far", "Choose a date at most 3 years from today.")
		}
		return end, nil
	case ValidityCustomDays:
		n, err := strconv.Atoi(strings.TrimSpace(customDays))
		if err != nil || n < 1 || n > 1095 {
			return time.Time{}, portal.FieldError(FieldCustomDays, "order.days_invalid", "Enter a number of days from 1 to 1095 (3 years).")
		}
		return now.Add(time.Duration(n) * day), nil
	}
	return time.Time{}, portal.FieldError(FieldValidity, "order.validity_invalid", "Choose a validity period.")
}

// Days returns the whole days between start and end, rounded up.
func Days(start, end time.Time) int {
	d := end.Sub(start)
	return int((d + 24*time.Hour - 1) / (24 * time.Hour))
}

// IsPlan reports whether a period needs more than one certificate: a
// certificate may not be valid longer than 825 days (SBR 6.3.2).
func IsPlan(start, end time.Time) bool { return end.Sub(start) > portal.MaxCertValidity }

// ParseAdditionalEmails splits and checks the comma-separated list.
func ParseAdditionalEmails(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == '\n' }) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		e, ok := portal.NormalizeEmail(part)
		if !ok {
			return nil, &portal.Error{Code: portal.EInvalid, Field: FieldAdditional, Key: "order.additional_invalid",
				Message: fmt.Sprintf("%q is not a valid email address.", truncate(part, 80)), Data: map[string]any{"Email": truncate(part, 80)}}
		}
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	if len(out) > MaxAdditionalEmails {
		return nil, portal.FieldError(FieldAdditional, "order.additional_too_many", "Enter at most 10 additional email addresses.")
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// CSRParser checks a CSR under the CA's intake policy and returns its
// public key (internal/ca.ParseCSR).
type CSRParser func(input []byte) (crypto.PublicKey, error)
