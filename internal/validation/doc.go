// Package validation is certdesk's pure checking core for domain control
// validation (SBR 3.2.2.1, which points to TLS BR 3.2.2.4) and for CAA
// issuemail processing (SBR 4.2.2.1, RFC 9495 with RFC 8659).
//
// It knows nothing of the database or the web pages: a caller gives it a
// domain and the random value it stored, and gets back a Result that says
// what was found and what was expected, so a page can show both.
//
// What is here:
//   - Resolver: a small DNS stub (github.com/miekg/dns) against one
//     configured server, UDP with TCP fallback on truncation, following CNAME
//     chains.
//   - Checker.CheckDNSTXT / CheckDNSCNAME: TLS BR 3.2.2.4.7 (DNS Change).
//   - Checker.CheckHTTP: TLS BR 3.2.2.4.18 (Agreed-Upon Change to Website v2),
//     with every connection's address checked at dial time by AddressAllowed.
//   - ConstructedEmails: TLS BR 3.2.2.4.4 (Email to a Constructed Address).
//   - Checker.CheckCAAIssueMail: RFC 9495 issuemail on the RFC 8659 relevant
//     RRset.
//   - Limiter: per-domain rate limit for checks a user can trigger.
//
// DNSSEC: TLS BR 3.2.2.4 requires DNSSEC validation for these queries from
// 2026-03-15. This package does not validate signatures itself; Config.Resolver
// must name a validating recursive resolver (for example Unbound), which
// answers SERVFAIL for bogus data; SERVFAIL is an error here, so a bogus
// answer never validates a domain or permits issuance.
package validation
