package billing

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"certdesk/internal/portal"
)

// Card brands the portal accepts.
const (
	BrandVisa       = "Visa"
	BrandMastercard = "Mastercard"
	BrandAmex       = "American Express"
)

// Form field names of the card inputs; card errors name these fields.
const (
	FieldCardNumber = "card_number"
	FieldCardExpiry = "card_expiry"
	FieldCardCVC    = "card_cvc"
	FieldCardName   = "card_name"
	FieldMethod     = "payment_method"
	FieldAmount     = "amount"
)

// CardInput is a card as typed into a form. It lives only in memory for
// the one request: the number and the CVC are never stored or logged
// (String and LogValue hide them).
type CardInput struct {
	Number string // digits, spaces and dashes allowed
	Expiry string // MM/YY (MM/YYYY accepted)
	CVC    string
	Name   string // cardholder name as printed on the card
}

// String never shows the number or the CVC, so a %v in a log line is safe.
func (c CardInput) String() string {
	d := digitsOnly(c.Number)
	last4 := ""
	if len(d) >= 4 {
		last4 = d[len(d)-4:]
	}
	return "card ••••" + last4
}

// GoString hides the number and the CVC from %#v too.
func (c CardInput) GoString() string { return c.String() }

// CardDetails is what may be kept about a card: brand, last four digits
// and expiry. Never the number or the CVC.
type CardDetails struct {
	Brand    string
	Last4    string
	ExpMonth int
	ExpYear  int // four digits
}

// Label is the card as shown to people: "Visa •••• 4242".
func (d CardDetails) Label() string { return d.Brand + " •••• " + d.Last4 }

// Expired reports whether the card is past its expiry month at now. A
// card is valid through the last day of its expiry month.
func (d CardDetails) Expired(now time.Time) bool {
	end := time.Date(d.ExpYear, time.Month(d.ExpMonth)+1, 1, 0, 0, 0, 0, time.UTC)
	return !now.UTC().Before(end)
}

func digitsOnly(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// normalizeNumber removes spaces and dashes; ok is false when anything but
// digits, spaces and dashes was typed.
func normalizeNumber(s string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-':
		default:
			return "", false
		}
	}
	return b.String(), true
}

// Luhn reports whether a string of digits passes the Luhn (mod 10) check.
func Luhn(number string) bool {
	if len(number) < 2 {
		return false
	}
	sum := 0
	double := false
	for i := len(number) - 1; i >= 0; i-- {
		c := number[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// BrandOf names the brand from the issuer identification number (the
// leading digits), or "" when the portal does not accept the card.
func BrandOf(number string) string {
	n := len(number)
	prefix := func(k int) int {
		if n < k {
			return -1
		}
		v, _ := strconv.Atoi(number[:k])
		return v
	}
	switch {
	case strings.HasPrefix(number, "4") && (n == 13 || n == 16 || n == 19):
		return BrandVisa
	case n == 16 && ((prefix(2) >= 51 && prefix(2) <= 55) || (prefix(4) >= 2221 && prefix(4) <= 2720)):
		return BrandMastercard
	case n == 15 && (prefix(2) == 34 || prefix(2) == 37):
		return BrandAmex
	}
	return ""
}

// ParseExpiry reads MM/YY or MM/YYYY (spaces allowed around the slash).
func ParseExpiry(s string) (month, year int, ok bool) {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	mm, yy, found := strings.Cut(s, "/")
	if !found || len(mm) < 1 || len(mm) > 2 || (len(yy) != 2 && len(yy) != 4) {
		return 0, 0, false
	}
	m, err1 := strconv.Atoi(mm)
	y, err2 := strconv.Atoi(yy)
	if err1 != nil || err2 != nil || m < 1 || m > 12 || y < 0 {
		return 0, 0, false
	}
	if len(yy) == 2 {
		y += 2000
	}
	return m, y, true
}

// ValidateCard checks a typed card at now: cardholder name, number
// (digits, length, Luhn, an accepted brand), expiry (MM/YY, not past,
// at most 20 years ahead) and CVC (3 digits, 4 for American Express).
// Every problem is a field error with a translation key, so the form can
// show them all at once. The number never appears in an error.
func ValidateCard(in CardInput, now time.Time) (CardDetails, error) {
	var fe portal.FieldErrors
	var d CardDetails
	name := strings.TrimSpace(in.Name)
	if name == "" {
		fe.Add(FieldCardName, "billing.card_name_required", "Enter the name on the card.")
	} else if utf8.RuneCountInString(name) > 100 {
		fe.Add(FieldCardName, "billing.card_name_too_long", "The name on the card is too long (at most 100 characters).")
	}
	num, ok := normalizeNumber(in.Number)
	switch {
	case strings.TrimSpace(in.Number) == "":
		fe.Add(FieldCardNumber, "billing.card_number_required", "Enter the card number.")
	case !ok || len(num) < 12 || len(num) > 19 || !Luhn(num):
		fe.Add(FieldCardNumber, "billing.card_number_invalid", "This card number is not valid. Check the digits.")
	default:
		d.Brand = BrandOf(num)
		d.Last4 = num[len(num)-4:]
		if d.Brand == "" {
			fe.Add(FieldCardNumber, "billing.card_brand_unsupported", "We accept Visa, Mastercard and American Express.")
		}
	}
	if strings.TrimSpace(in.Expiry) == "" {
		fe.Add(FieldCardExpiry, "billing.card_expiry_required", "Enter the expiry date as MM/YY.")
	} else if m, y, ok := ParseExpiry(in.Expiry); !ok {
		fe.Add(FieldCardExpiry, "billing.card_expiry_invalid", "Enter the expiry date as MM/YY, for example 08/29.")
	} else {
		d.ExpMonth, d.ExpYear = m, y
		if d.Expired(now) {
			fe.Add(FieldCardExpiry, "billing.card_expired", "This card has expired.")
		} else if y > now.Year()+20 {
			fe.Add(FieldCardExpiry, "billing.card_expiry_invalid", "Enter the expiry date as MM/YY, for example 08/29.")
		}
	}
	cvc := strings.TrimSpace(in.CVC)
	want := 3
	if d.Brand == BrandAmex {
		want = 4
	}
	if cvc == "" {
		fe.Add(FieldCardCVC, "billing.card_cvc_required", "Enter the security code (CVC) from the back of the card.")
	} else if digitsOnly(cvc) != cvc || len(cvc) < 3 || len(cvc) > 4 || (d.Brand != "" && len(cvc) != want) {
		fe.Add(FieldCardCVC, "billing.card_cvc_invalid", "The security code (CVC) is 3 digits, 4 for American Express.")
	}
	if err := fe.Err(); err != nil {
		return CardDetails{}, err
	}
	return d, nil
}
