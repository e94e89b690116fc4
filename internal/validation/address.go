package validation

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrAddressNotAllowed is wrapped by every refusal of a network address
// (the HTTP check refuses to connect to non-public addresses).
var ErrAddressNotAllowed = errors.New("address is not allowed")

// AddressError says which address was refused and why. It wraps
// ErrAddressNotAllowed.
type AddressError struct {
	Addr   netip.Addr
	Reason string
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("address %s is not allowed (%s)", e.Addr, e.Reason)
}

// Unwrap lets errors.Is(err, ErrAddressNotAllowed) match.
func (e *AddressError) Unwrap() error { return ErrAddressNotAllowed }

type prefixReason struct {
	p      netip.Prefix
	reason string
}

// deniedPrefixes are non-public ranges beyond what netip.Addr's own
// predicates cover (IANA special-purpose registries for IPv4 and IPv6).
var deniedPrefixes = func() []prefixReason {
	list := []struct{ p, r string }{
		{"0.0.0.0/8", "this network"},
		{"100.64.0.0/10", "shared address space (CGNAT)"},
		{"169.254.169.254/32", "cloud metadata"},
		{"192.0.0.0/24", "IETF protocol assignments"},
		{"192.0.2.0/24", "documentation"},
		{"192.88.99.0/24", "6to4 relay anycast"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation"},
		{"203.0.113.0/24", "documentation"},
		{"240.0.0.0/4", "reserved"},
		{"255.255.255.255/32", "broadcast"},
		{"fd00:ec2::254/128", "cloud metadata"},
		{"::/96", "IPv4-compatible (deprecated)"},
		{"64:ff9b::/96", "NAT64 (may reach an internal IPv4 address)"},
		{"64:ff9b:1::/48", "local-use NAT64"},
		{"100::/64", "discard-only"},
		{"2001::/32", "Teredo"},
		{"2001:2::/48", "benchmarking"},
		{"2001:10::/28", "ORCHID"},
		{"2001:20::/28", "ORCHIDv2"},
		{"2001:db8::/32", "documentation"},
		{"2002::/16", "6to4 (may embed an internal IPv4 address)"},
		{"3fff::/20", "documentation"},
		{"5f00::/16", "segment routing"},
		{"fec0::/10", "site-local (deprecated)"},
	}
	out := make([]prefixReason, 0, len(list))
	for _, e := range list {
		out = append(out, prefixReason{netip.MustParsePrefix(e.p), e.r})
	}
	return out
}()

var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// AddressAllowed reports whether the HTTP check may open a connection to ip.
// Only public unicast addresses are allowed: loopback, private (RFC 1918,
// fc00::/7), link-local (169.254/16, fe80::/10, which hold the cloud
// metadata services), unspecified, multicast, CGNAT (100.64/10) and the
// other special-purpose ranges are refused. allowLoopback (test
// configurations only) allows loopback addresses and nothing else.
// It is a pure function: it sends no packet.
func AddressAllowed(ip netip.Addr, allowLoopback bool) bool {
	ok, _ := addressVerdict(ip, allowLoopback)
	return ok
}

// addressVerdict is AddressAllowed with the reason for a refusal.
func addressVerdict(ip netip.Addr, allowLoopback bool) (bool, string) {
	if !ip.IsValid() {
		return false, "invalid"
	}
	ip = ip.Unmap().WithZone("")
	switch {
	case ip.IsLoopback():
		if allowLoopback {
			return true, ""
		}
		return false, "loopback"
	case ip.IsUnspecified():
		return false, "unspecified"
	case ip.IsMulticast():
		return false, "multicast"
	case ip.IsLinkLocalUnicast():
		if ip == netip.MustParseAddr("169.254.169.254") {
			return false, "cloud metadata"
		}
		return false, "link-local"
	case ip.IsPrivate():
		if ip == netip.MustParseAddr("fd00:ec2::254") {
			return false, "cloud metadata"
		}
		return false, "private"
	}
	for _, d := range deniedPrefixes {
		if d.p.Contains(ip) {
			return false, d.reason
		}
	}
	if ip.Is6() && !globalUnicast6.Contains(ip) {
		return false, "not global unicast"
	}
	return true, ""
}
