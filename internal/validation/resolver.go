package validation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// maxCNAMEHops bounds how many aliases a lookup follows.
const maxCNAMEHops = 8

// ednsBufSize is the EDNS0 UDP payload size advertised (DNS flag day 2020).
const ednsBufSize = 1232

// DNSError is a failed DNS lookup: the server answered with an error code
// other than NXDOMAIN (SERVFAIL, REFUSED, ...), did not answer in time, or
// sent something unusable. A caller must treat it as "unknown", never as
// "no records" (RFC 8659 section 3; SBR 4.2.2.1).
type DNSError struct {
	Name  string // the name queried, without trailing dot
	Type  string // "TXT", "CAA", ...
	Rcode string // "SERVFAIL", ...; empty when there was no answer
	Err   error  // transport error, when there was no answer
}

func (e *DNSError) Error() string {
	if e.Rcode != "" {
		return fmt.Sprintf("DNS %s lookup for %s failed: %s", e.Type, e.Name, e.Rcode)
	}
	return fmt.Sprintf("DNS %s lookup for %s failed: %v", e.Type, e.Name, e.Err)
}

func (e *DNSError) Unwrap() error { return e.Err }

// CAARecord is one CAA resource record (RFC 8659 section 4.1).
type CAARecord struct {
	Flag  uint8
	Tag   string
	Value string
}

// Critical reports whether the Issuer Critical flag (bit 0, value 128) is set.
func (r CAARecord) Critical() bool { return r.Flag&128 != 0 }

func (r CAARecord) String() string { return fmt.Sprintf("%d %s %q", r.Flag, r.Tag, r.Value) }

// Resolver is a small DNS stub resolver against one server. It asks over
// UDP and repeats the question over TCP when the answer is truncated.
type Resolver struct {
	addr    string
	timeout time.Duration
}

// NewResolver returns a resolver for the server addr ("host:port"). An
// empty addr means the first nameserver in /etc/resolv.conf. A timeout of
// zero means DefaultDNSTimeout.
func NewResolver(addr string, timeout time.Duration) (*Resolver, error) {
	if addr == "" {
		a, err := resolverFromFile("/etc/resolv.conf")
		if err != nil {
			return nil, err
		}
		addr = a
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("validation: DNS resolver %q is not host:port: %w", addr, err)
	}
	if timeout <= 0 {
		timeout = DefaultDNSTimeout
	}
	return &Resolver{addr: addr, timeout: timeout}, nil
}

// resolverFromFile reads the first nameserver of a resolv.conf file.
func resolverFromFile(path string) (string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return "", fmt.Errorf("validation: reading %s: %w", path, err)
	}
	if len(cc.Servers) == 0 {
		return "", fmt.Errorf("validation: no nameserver in %s", path)
	}
	port := cc.Port
	if port == "" {
		port = "53"
	}
	return net.JoinHostPort(cc.Servers[0], port), nil
}

// Addr returns the server address the resolver asks.
func (r *Resolver) Addr() string { return r.addr }

// exchange asks one question. NOERROR and NXDOMAIN answers are returned;
// every other outcome is a *DNSError.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(ednsBufSize, false)
	fail := func(rcode string, err error) error {
		return &DNSError{Name: normName(name), Type: dns.TypeToString[qtype], Rcode: rcode, Err: err}
	}
	udp := &dns.Client{Net: "udp", Timeout: r.timeout, UDPSize: ednsBufSize}
	resp, _, err := udp.ExchangeContext(ctx, m, r.addr)
	if err == nil && resp.Truncated {
		tcp := &dns.Client{Net: "tcp", Timeout: r.timeout}
		resp, _, err = tcp.ExchangeContext(ctx, m, r.addr)
	}
	if err != nil {
		return nil, fail("", err)
	}
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, m.Question[0].Name) ||
		resp.Question[0].Qtype != qtype {
		return nil, fail("", errors.New("answer does not match the question"))
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return resp, nil
	default:
		return nil, fail(dns.RcodeToString[resp.Rcode], nil)
	}
}

// lookup returns the records of qtype at name, following CNAME aliases as
// RFC 1034 section 4.3.2 does (RFC 8659 section 3 requires this for CAA):
// aliases in the answer are followed, and when the answer stops at an alias
// whose target's records it does not carry, the target is asked in turn.
// It also returns the chain of names visited (the queried name first).
// NXDOMAIN and NODATA give no records and no error.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, []string, error) {
	cur := dns.CanonicalName(name)
	chain := []string{normName(cur)}
	seen := map[string]bool{cur: true}
	for hop := 0; ; hop++ {
		resp, err := r.exchange(ctx, cur, qtype)
		if err != nil {
			return nil, chain, err
		}
		before := len(chain)
		aliases := map[string]string{}
		for _, rr := range resp.Answer {
			if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME {
				aliases[dns.CanonicalName(c.Hdr.Name)] = dns.CanonicalName(c.Target)
			}
		}
		for {
			next, ok := aliases[cur]
			if !ok {
				break
			}
			if seen[next] || len(chain) > maxCNAMEHops {
				return nil, chain, &DNSError{Name: normName(name), Type: dns.TypeToString[qtype], Err: errors.New("CNAME loop or chain too long")}
			}
			seen[next] = true
			cur = next
			chain = append(chain, normName(cur))
		}
		var out []dns.RR
		for _, rr := range resp.Answer {
			if rr.Header().Rrtype == qtype && dns.CanonicalName(rr.Header().Name) == cur {
				out = append(out, rr)
			}
		}
		if len(out) > 0 || len(chain) == before || resp.Rcode == dns.RcodeNameError {
			// Records found; or no new alias in this answer (NODATA);
			// or the resolver already said the end of the chain does not exist.
			return out, chain, nil
		}
		// The answer ended at an alias whose target it did not include.
		if hop >= maxCNAMEHops {
			return nil, chain, &DNSError{Name: normName(name), Type: dns.TypeToString[qtype], Err: errors.New("CNAME chain too long")}
		}
	}
}

// LookupTXT returns the TXT records at name, each record's strings joined
// (RFC 7208 style), following CNAME aliases.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, _, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, nil
}

// LookupCNAME returns the target of the CNAME record at name (without the
// trailing dot, lower case), or "" when name has no CNAME record.
func (r *Resolver) LookupCNAME(ctx context.Context, name string) (string, error) {
	resp, err := r.exchange(ctx, name, dns.TypeCNAME)
	if err != nil {
		return "", err
	}
	want := dns.CanonicalName(name)
	for _, rr := range resp.Answer {
		if c, ok := rr.(*dns.CNAME); ok && dns.CanonicalName(c.Hdr.Name) == want {
			return normName(c.Target), nil
		}
	}
	return "", nil
}

// LookupCAA returns the CAA RRset at name (not its parents), following
// CNAME aliases as RFC 8659 section 3 requires.
func (r *Resolver) LookupCAA(ctx context.Context, name string) ([]CAARecord, error) {
	rrs, _, err := r.lookup(ctx, name, dns.TypeCAA)
	if err != nil {
		return nil, err
	}
	out := make([]CAARecord, 0, len(rrs))
	for _, rr := range rrs {
		c := rr.(*dns.CAA)
		out = append(out, CAARecord{Flag: c.Flag, Tag: c.Tag, Value: c.Value})
	}
	return out, nil
}

// LookupIP returns the A and AAAA addresses of name, following CNAME
// aliases. It fails only when no address was found and a lookup failed.
func (r *Resolver) LookupIP(ctx context.Context, name string) ([]netip.Addr, error) {
	var out []netip.Addr
	var errs []error
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, _, err := r.lookup(ctx, name, qt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rr := range rrs {
			var ip net.IP
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A
			case *dns.AAAA:
				ip = v.AAAA
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
