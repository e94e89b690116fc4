package portal

import (
	"net/mail"
	"strings"
)

// publicMailDomains are public mail providers: their domains can be used
// only through prevalidation or with mailbox validation (Secure Email for
// Individual), never validated by domain control inside an order.
var publicMailDomains = map[string]bool{
	"gmail.com": true, "googlemail.com": true, "outlook.com": true, "hotmail.com": true,
	"live.com": true, "msn.com": true, "yahoo.com": true, "ymail.com": true, "icloud.com": true,
	"me.com": true, "mac.com": true, "aol.com": true, "web.de": true, "proton.me": true,
	"protonmail.com": true, "pm.me": true, "mail.com": true, "zoho.com": true, "yandex.com": true,
	"yandex.ru": true, "mail.ru": true, "hey.com": true, "fastmail.com": true, "tutanota.com": true,
	"tuta.io": true, "ziggo.nl": true, "kpnmail.nl": true, "hotmail.nl": true, "live.nl": true,
	"outlook.nl": true, "yahoo.co.uk": true, "hotmail.co.uk": true, "gmx.net": true,
}

// IsPublicMailDomain reports whether domain belongs to a public mail
// provider (gmx.* in any top-level domain included).
func IsPublicMailDomain(domain string) bool {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if publicMailDomains[d] || strings.HasPrefix(d, "gmx.") {
		return true
	}
	return false
}

// NormalizeEmail checks an address (a bare addr-spec, at most 254 chars)
// and returns it with a lower-cased domain. ok is false when it is not a
// usable mailbox address.
func NormalizeEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 || strings.ContainsAny(s, " <>\"(),;\r\n\t") {
		return "", false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", false
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], strings.ToLower(s[at+1:])
	if local == "" || len(local) > 64 || !ValidDomainName(domain) || !strings.Contains(domain, ".") {
		return "", false
	}
	return local + "@" + domain, true
}

// EmailDomain returns the domain part of a normalized address.
func EmailDomain(email string) string {
	return email[strings.LastIndexByte(email, '@')+1:]
}

// ValidDomainName checks an LDH domain name (lower-case, no trailing dot).
func ValidDomainName(d string) bool {
	if len(d) == 0 || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// NormalizeDomain lower-cases and trims a domain name and checks it.
func NormalizeDomain(s string) (string, bool) {
	d := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
	if !ValidDomainName(d) || !strings.Contains(d, ".") {
		return "", false
	}
	return d, true
}

// DomainCovers reports whether a validated domain covers an email domain:
// the same domain or one of its subdomains.
func DomainCovers(validated, emailDomain string) bool {
	return emailDomain == validated || strings.HasSuffix(emailDomain, "."+validated)
}
