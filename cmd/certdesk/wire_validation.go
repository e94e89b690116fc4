package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"certdesk/internal/mail"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/internal/validation"
)

// The validation service implements the ordering orchestrator's Validator.
var _ ordering.Validator = (*validation.Service)(nil)

// Environment of the validation service (the serve command's other
// settings are flags; these are read here so tests can point the portal
// at their own DNS and web servers without code changes):
//
//	CERTDESK_DNS_RESOLVER                 host:port of the DNS resolver (default: first nameserver of /etc/resolv.conf);
//	                                      should be a DNSSEC-validating resolver (TLS BR 3.2.2.4)
//	CERTDESK_VALIDATION_ALLOW_LOOPBACK=1  let the HTTP check connect to 127.0.0.0/8 and ::1 (tests only)
//	CERTDESK_VALIDATION_HTTP_PORT         port of the HTTP check (default 80)
//	CERTDESK_VALIDATION_HTTPS_PORT        port for https redirects (default 443)
//	CERTDESK_CAA_IDENTITY                 this CA's issuer domain name(s) in CAA issuemail, comma-separated (default certdesk.test)
//	CERTDESK_DCV_CNAME_TARGET             target of the DNS CNAME method (default dcv.certdesk.invalid)
//	CERTDESK_CALLBACK_PHONE               the CA's call-back number left on voicemails
func validationConfigFromEnv() (validation.Config, error) {
	cfg := validation.Config{
		Resolver:      strings.TrimSpace(os.Getenv("CERTDESK_DNS_RESOLVER")),
		AllowLoopback: envBool("CERTDESK_VALIDATION_ALLOW_LOOPBACK", false),
		CNAMETarget:   strings.TrimSpace(os.Getenv("CERTDESK_DCV_CNAME_TARGET")),
	}
	for _, id := range strings.Split(envDefault("CERTDESK_CAA_IDENTITY", "certdesk.test"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			cfg.CAAIdentities = append(cfg.CAAIdentities, id)
		}
	}
	port := func(name string) (int, error) {
		v := strings.TrimSpace(os.Getenv(name))
		if v == "" {
			return 0, nil
		}
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return 0, fmt.Errorf("%s: %q is not a port number", name, v)
		}
		return p, nil
	}
	var err error
	if cfg.HTTPPort, err = port("CERTDESK_VALIDATION_HTTP_PORT"); err != nil {
		return cfg, err
	}
	if cfg.HTTPSPort, err = port("CERTDESK_VALIDATION_HTTPS_PORT"); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// wireValidation builds the validation service. Call it after a.ordering
// exists: the service asks ordering to advance recipients when a
// validation completes, and ordering uses it as its Validator.
func wireValidation(a *app) (*validation.Service, error) {
	cfg, err := validationConfigFromEnv()
	if err != nil {
		return nil, err
	}
	checker, err := validation.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("validation: %w", err)
	}
	if cfg.AllowLoopback {
		a.log.Warn("validation: the HTTP check may connect to loopback addresses (CERTDESK_VALIDATION_ALLOW_LOOPBACK); use this for tests only")
	}
	svc := &validation.Service{
		Store:         a.db,
		Checker:       checker,
		Limiter:       validation.NewLimiter(0, 0, 0),
		Clock:         a.clock,
		Compose:       composeMail,
		Log:           a.log,
		BaseURL:       a.cfg.BaseURL,
		CallbackPhone: strings.TrimSpace(os.Getenv("CERTDESK_CALLBACK_PHONE")),
	}
	if a.ordering != nil {
		svc.Advancer = a.ordering
	}
	return svc, nil
}

// composeMail adapts internal/mail.Compose to validation.Composer.
func composeMail(lang, subject string, body []string, data map[string]any, links []validation.MailLink) (portal.Email, error) {
	ml := make([]mail.Link, len(links))
	for i, l := range links {
		ml[i] = mail.Link{Label: l.Label, URL: l.URL}
	}
	return mail.Compose(lang, subject, body, data, ml)
}
