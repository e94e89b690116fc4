package billing

import (
	"strconv"
	"strings"
)

// FormatEuro formats cents as "€1,234.56" (English notation; views use
// FormatEuroLang for the page language).
func FormatEuro(cents int64) string { return FormatEuroLang(cents, "en") }

// FormatEuroLang formats cents for a language: "€1,234.56" in English,
// "€ 1.234,56" in Dutch.
func FormatEuroLang(cents int64, lang string) string {
	neg := cents < 0
	if neg {
		cents = -cents
	}
	whole := strconv.FormatInt(cents/100, 10)
	frac := cents % 100
	thousands, decimal, prefix := ",", ".", "€"
	if lang == "nl" {
		thousands, decimal, prefix = ".", ",", "€ "
	}
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteString(thousands)
		}
		b.WriteRune(r)
	}
	s := prefix + b.String() + decimal + strconv.FormatInt(frac/10, 10) + strconv.FormatInt(frac%10, 10)
	if neg {
		s = "-" + s
	}
	return s
}

// ParseEuro reads an amount in euro as typed: "50", "50.5", "50.50",
// "50,50", optionally with a leading "€". Thousands separators are not
// accepted (they are ambiguous between English and Dutch). ok is false
// for anything else, including negative amounts.
func ParseEuro(s string) (cents int64, ok bool) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "€"))
	if s == "" || len(s) > 15 {
		return 0, false
	}
	whole, frac, hasFrac := strings.Cut(strings.Replace(s, ",", ".", 1), ".")
	if whole == "" || (hasFrac && (len(frac) < 1 || len(frac) > 2)) {
		return 0, false
	}
	for _, part := range []string{whole, frac} {
		for _, r := range part {
			if r < '0' || r > '9' {
				return 0, false
			}
		}
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, false
	}
	var f int64
	if hasFrac {
		if len(frac) == 1 {
			frac += "0"
		}
		f, _ = strconv.ParseInt(frac, 10, 64)
	}
	return w*100 + f, true
}
