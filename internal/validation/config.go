package validation

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Defaults used when a Config field is left zero.
const (
	DefaultDNSTimeout      = 5 * time.Second
	DefaultHTTPTimeout     = 10 * time.Second // whole fetch, redirects included
	DefaultHTTPDialTimeout = 5 * time.Second
	DefaultHTTPBodyLimit   = 64 << 10 // 64 KiB
	DefaultCNAMETarget     = "dcv.certdesk.invalid"
	// MaxRedirects is the most redirects the HTTP check follows.
	MaxRedirects = 10
)

// Config configures a Checker. The zero value is usable except that
// CAAIdentities should name this CA's issuer domain names.
type Config struct {
	// Resolver is the DNS server as "host:port". Empty means the first
	// nameserver in /etc/resolv.conf. It should be a DNSSEC-validating
	// recursive resolver (TLS BR 3.2.2.4, effective 2026-03-15).
	Resolver string
	// DNSTimeout bounds one DNS exchange (default DefaultDNSTimeout).
	DNSTimeout time.Duration

	// HTTPPort and HTTPSPort are the Authorized Ports of TLS BR 3.2.2.4.18
	// (default 80 and 443). Tests override them with a test server's port.
	HTTPPort  int
	HTTPSPort int
	// HTTPTimeout bounds one whole HTTP check (default DefaultHTTPTimeout).
	HTTPTimeout time.Duration
	// HTTPDialTimeout bounds one TCP connect (default DefaultHTTPDialTimeout).
	HTTPDialTimeout time.Duration
	// HTTPBodyLimit is the largest file body read (default 64 KiB); a
	// larger body fails the check.
	HTTPBodyLimit int64

	// AllowLoopback lets the HTTP check connect to loopback addresses
	// (127.0.0.0/8, ::1). Test configurations only; it allows nothing else.
	AllowLoopback bool
	// AddressPolicy is a test seam. When set, an address must pass both
	// AddressAllowed and AddressPolicy; it can only refuse more, never allow
	// what AddressAllowed refuses.
	AddressPolicy func(netip.Addr) bool

	// CAAIdentities are this CA's issuer domain names recognised in CAA
	// issuemail properties (SBR 4.2.2.1: the CPS names this set).
	CAAIdentities []string
	// CNAMETarget is the default target of the DNS CNAME method when the
	// caller passes none (default DefaultCNAMETarget).
	CNAMETarget string
}

// Checker runs the checks of one Config. It is safe for concurrent use.
type Checker struct {
	cfg Config
	res *Resolver
}

// New returns a Checker for cfg, filling in defaults. It fails when no DNS
// server can be determined or a value is out of range.
func New(cfg Config) (*Checker, error) {
	if cfg.DNSTimeout <= 0 {
		cfg.DNSTimeout = DefaultDNSTimeout
	}
	if cfg.HTTPPort == 0 {
		cfg.HTTPPort = 80
	}
	if cfg.HTTPSPort == 0 {
		cfg.HTTPSPort = 443
	}
	if cfg.HTTPPort < 1 || cfg.HTTPPort > 65535 || cfg.HTTPSPort < 1 || cfg.HTTPSPort > 65535 {
		return nil, fmt.Errorf("validation: HTTP ports out of range: %d, %d", cfg.HTTPPort, cfg.HTTPSPort)
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = DefaultHTTPTimeout
	}
	if cfg.HTTPDialTimeout <= 0 {
		cfg.HTTPDialTimeout = DefaultHTTPDialTimeout
	}
	if cfg.HTTPBodyLimit <= 0 {
		cfg.HTTPBodyLimit = DefaultHTTPBodyLimit
	}
	if cfg.CNAMETarget == "" {
		cfg.CNAMETarget = DefaultCNAMETarget
	}
	ids := make([]string, 0, len(cfg.CAAIdentities))
	for _, id := range cfg.CAAIdentities {
		id = normName(id)
		if id != "" {
			ids = append(ids, id)
		}
	}
	cfg.CAAIdentities = ids
	res, err := NewResolver(cfg.Resolver, cfg.DNSTimeout)
	if err != nil {
		return nil, err
	}
	cfg.Resolver = res.Addr()
	return &Checker{cfg: cfg, res: res}, nil
}

// Config returns the effective configuration (defaults filled in).
func (c *Checker) Config() Config { return c.cfg }

// Resolver returns the Checker's DNS resolver.
func (c *Checker) Resolver() *Resolver { return c.res }

// addressAllowed applies AddressAllowed and the optional test policy.
func (c *Checker) addressAllowed(ip netip.Addr) error {
	if ok, reason := addressVerdict(ip, c.cfg.AllowLoopback); !ok {
		return &AddressError{Addr: ip, Reason: reason}
	}
	if c.cfg.AddressPolicy != nil && !c.cfg.AddressPolicy(ip.Unmap()) {
		return &AddressError{Addr: ip, Reason: "refused by address policy"}
	}
	return nil
}

// normName lower-cases a DNS name and drops a trailing dot.
func normName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}
