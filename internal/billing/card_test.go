package billing

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"certdesk/internal/portal"
)

func TestLuhn(t *testing.T) {
	good := []string{TestCardVisa, TestCardMastercard, TestCardDeclined, TestCardInsufficientFunds, "378282246310005", "4111111111111111", "79927398713"}
	for _, n := range good {
		if !Luhn(n) {
			t.Errorf("Luhn(%s) = false, want true", n)
		}
	}
	bad := []string{"4242424242424241", "4111111111111112", "79927398710", "", "0", "42424242a4242424"}
	for _, n := range bad {
		if Luhn(n) {
			t.Errorf("Luhn(%q) = true, want false", n)
		}
	}
}

func TestBrandOf(t *testing.T) {
	cases := map[string]string{
		TestCardVisa:        BrandVisa,
		"4222222222222":     BrandVisa, // 13-digit Visa
		TestCardMastercard:  BrandMastercard,
		"2223003122003222":  BrandMastercard, // 2-series
		"378282246310005":   BrandAmex,
		"6011111111111117":  "", // Discover: not accepted
		"3530111333300000":  "", // JCB
		"42424242424242420": "", // Visa prefix, wrong length
	}
	for n, want := range cases {
		if got := BrandOf(n); got != want {
			t.Errorf("BrandOf(%s) = %q, want %q", n, got, want)
		}
	}
}

func fieldKeys(err error) map[string]string {
	out := map[string]string{}
	for _, e := range portal.AsFieldErrors(err) {
		out[e.Field] = e.Key
	}
	return out
}

func TestValidateCard(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ok := CardInput{Number: "4242 4242 4242 4242", Expiry: "11/26", CVC: "123", Name: "Alex Admin"}
	d, err := ValidateCard(ok, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Brand != BrandVisa || d.Last4 != "4242" || d.ExpMonth != 11 || d.ExpYear != 2026 || d.Label() != "Visa •••• 4242" {
		t.Fatalf("details: %+v", d)
	}
	cases := []struct {
		name  string
		mod   func(*CardInput)
		field string
		key   string
	}{
		{"luhn", func(c *CardInput) { c.Number = "4242424242424241" }, FieldCardNumber, "billing.card_number_invalid"},
		{"letters", func(c *CardInput) { c.Number = "4242-4242-4242-424x" }, FieldCardNumber, "billing.card_number_invalid"},
		{"short", func(c *CardInput) { c.Number = "4242" }, FieldCardNumber, "billing.card_number_invalid"},
		{"empty number", func(c *CardInput) { c.Number = " " }, FieldCardNumber, "billing.card_number_required"},
		{"discover", func(c *CardInput) { c.Number = "6011111111111117" }, FieldCardNumber, "billing.card_brand_unsupported"},
		{"expired last month", func(c *CardInput) { c.Expiry = "10/26" }, FieldCardExpiry, "billing.card_expired"},
		{"bad month", func(c *CardInput) { c.Expiry = "13/27" }, FieldCardExpiry, "billing.card_expiry_invalid"},
		{"no slash", func(c *CardInput) { c.Expiry = "1127" }, FieldCardExpiry, "billing.card_expiry_invalid"},
		{"far future", func(c *CardInput) { c.Expiry = "01/2070" }, FieldCardExpiry, "billing.card_expiry_invalid"},
		{"cvc 2", func(c *CardInput) { c.CVC = "12" }, FieldCardCVC, "billing.card_cvc_invalid"},
		{"cvc 4 on visa", func(c *CardInput) { c.CVC = "1234" }, FieldCardCVC, "billing.card_cvc_invalid"},
		{"cvc letters", func(c *CardInput) { c.CVC = "12a" }, FieldCardCVC, "billing.card_cvc_invalid"},
		{"no name", func(c *CardInput) { c.Name = "  " }, FieldCardName, "billing.card_name_required"},
	}
	for _, tc := range cases {
		in := ok
		tc.mod(&in)
		_, err := ValidateCard(in, now)
		if got := fieldKeys(err)[tc.field]; got != tc.key {
			t.Errorf("%s: field %s key %q, want %q (err %v)", tc.name, tc.field, got, tc.key, err)
		}
		if err != nil && strings.Contains(err.Error(), "4242424242") {
			t.Errorf("%s: error shows the card number: %v", tc.name, err)
		}
	}
	// Amex: 15 digits, 4-digit CVC
	if _, err := ValidateCard(CardInput{Number: "378282246310005", Expiry: "12/2030", CVC: "1234", Name: "A"}, now); err != nil {
		t.Errorf("amex: %v", err)
	}
	if k := fieldKeys(mustErr(ValidateCard(CardInput{Number: "378282246310005", Expiry: "12/30", CVC: "123", Name: "A"}, now)))[FieldCardCVC]; k != "billing.card_cvc_invalid" {
		t.Errorf("amex 3-digit cvc: %q", k)
	}
	// every field wrong at once: all four reported
	if got := len(fieldKeys(mustErr(ValidateCard(CardInput{}, now)))); got != 4 {
		t.Errorf("empty card: %d field errors, want 4", got)
	}
}

func mustErr(_ CardDetails, err error) error { return err }

func TestExpiryBoundaryWithFixedClock(t *testing.T) {
	clock := portal.NewFixedClock(time.Date(2027, 3, 31, 23, 59, 59, 0, time.UTC))
	in := CardInput{Number: TestCardVisa, Expiry: "03/27", CVC: "123", Name: "A"}
	if _, err := ValidateCard(in, clock.Now()); err != nil {
		t.Fatalf("card valid through the end of its month: %v", err)
	}
	clock.Advance(time.Second) // 1 April 2027
	if k := fieldKeys(mustErr(ValidateCard(in, clock.Now())))[FieldCardExpiry]; k != "billing.card_expired" {
		t.Fatalf("day after the expiry month: %q", k)
	}
}

func TestCardInputNeverPrintsNumber(t *testing.T) {
	in := CardInput{Number: TestCardVisa, Expiry: "12/30", CVC: "987", Name: "A"}
	for _, s := range []string{fmt.Sprint(in), fmt.Sprintf("%v %+v %#v %s", in, in, in, in), fmt.Sprint(&in)} {
		if strings.Contains(s, "42424242") || strings.Contains(s, "987") {
			t.Fatalf("formatted card leaks: %q", s)
		}
	}
}

func TestMoney(t *testing.T) {
	if got := FormatEuro(123456789); got != "€1,234,567.89" {
		t.Errorf("FormatEuro = %q", got)
	}
	if got := FormatEuroLang(123456, "nl"); got != "€ 1.234,56" {
		t.Errorf("FormatEuroLang nl = %q", got)
	}
	if got := FormatEuro(5); got != "€0.05" {
		t.Errorf("FormatEuro(5) = %q", got)
	}
	parse := map[string]int64{"50": 5000, "50.5": 5050, "50,50": 5050, "€ 12.34": 1234, " 0.01 ": 1}
	for in, want := range parse {
		if got, ok := ParseEuro(in); !ok || got != want {
			t.Errorf("ParseEuro(%q) = %d %v, want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-5", "1,000.00", "12.345", "abc", "1e3", "5."} {
		if _, ok := ParseEuro(in); ok {
			t.Errorf("ParseEuro(%q) accepted", in)
		}
	}
}

func TestYears(t *testing.T) {
	for days, want := range map[int]int64{0: 1, 1: 1, 365: 1, 366: 2, 730: 2, 731: 3, 1095: 3} {
		if got := Years(days); got != want {
			t.Errorf("Years(%d) = %d, want %d", days, got, want)
		}
	}
}
