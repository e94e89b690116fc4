package validation

import (
	"certdesk/internal/portal"
)

// Validation methods, recorded with each completed validation: SBR 3.2.2
// requires a record of the method used, with the TLS BR version.
const (
	MethodDNSTXT           = "TLS BR v2.2.6 3.2.2.4.7 DNS Change (TXT)"
	MethodDNSCNAME         = "TLS BR v2.2.6 3.2.2.4.7 DNS Change (CNAME)"
	MethodHTTP             = "TLS BR v2.2.6 3.2.2.4.18 Agreed-Upon Change to Website v2"
	MethodConstructedEmail = "TLS BR v2.2.6 3.2.2.4.4 Email to a Constructed Address"
)

// Result is the outcome of one check, with enough detail for a page to say
// "found TXT records: ...; expected ...".
//
// A check returns (Result, nil) when it ran to the end: OK says whether
// the value was there. It returns (Result, err) when it could not run to the
// end (DNS failure, refused address, redirect policy, body too large, bad
// input); then OK is false and Detail says what happened.
type Result struct {
	OK       bool
	Found    []string // what was seen: records, or the URL, status and a body excerpt
	Expected string   // what would have passed
	Detail   string   // one human-readable sentence
	Method   string   // one of the Method constants
}

// normDomain checks and normalises a domain name given by a caller.
func normDomain(domain string) (string, error) {
	d, ok := portal.NormalizeDomain(domain)
	if !ok {
		return "", portal.FieldError("domain", "", "Enter a valid domain name.")
	}
	return d, nil
}

// checkValue refuses an empty random value: an empty value would match
// anything.
func checkValue(value string) error {
	if value == "" {
		return portal.Errorf(portal.EInvalid, "The validation value is empty.")
	}
	return nil
}

// fail fills in a Result for a check that could not run to the end.
func fail(r Result, err error) (Result, error) {
	r.OK = false
	if r.Detail == "" {
		r.Detail = err.Error()
	}
	return r, err
}
