package validation

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testDNS is a small DNS server on 127.0.0.1 (UDP and TCP, same port)
// serving records the test controls. It answers like a recursive resolver
// would: it follows CNAMEs inside its own data, except from names listed in
// noChase, where it returns the CNAME alone (as an authoritative server for
// another zone would), so the client must ask again.
type testDNS struct {
	Addr string

	mu       sync.Mutex
	rrs      map[string][]dns.RR
	servfail map[string]bool
	drop     map[string]bool
	noChase  map[string]bool

	udpQueries atomic.Int64
	tcpQueries atomic.Int64
}

func startDNS(t *testing.T, records ...string) *testDNS {
	t.Helper()
	z := &testDNS{rrs: map[string][]dns.RR{}, servfail: map[string]bool{}, drop: map[string]bool{}, noChase: map[string]bool{}}
	z.Add(t, records...)
	var pc net.PacketConn
	var ln net.Listener
	for i := 0; ; i++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if i > 20 {
			t.Fatalf("no free UDP+TCP port pair: %v", err)
		}
	}
	z.Addr = pc.LocalAddr().String()
	for _, s := range []*dns.Server{
		{PacketConn: pc, Handler: z},
		{Listener: ln, Handler: z},
	} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("DNS test server did not start")
		}
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return z
}

// Add parses zone-file lines ("name. 60 IN TXT \"v\"") into the zone.
func (z *testDNS) Add(t *testing.T, records ...string) {
	t.Helper()
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad test record %q: %v", s, err)
		}
		n := dns.CanonicalName(rr.Header().Name)
		z.rrs[n] = append(z.rrs[n], rr)
	}
}

// Replace drops every record at name, then adds records.
func (z *testDNS) Replace(t *testing.T, name string, records ...string) {
	z.mu.Lock()
	delete(z.rrs, dns.CanonicalName(name))
	z.mu.Unlock()
	z.Add(t, records...)
}

func (z *testDNS) ServFail(name string) {
	z.mu.Lock()
	z.servfail[dns.CanonicalName(name)] = true
	z.mu.Unlock()
}
func (z *testDNS) Drop(name string) {
	z.mu.Lock()
	z.drop[dns.CanonicalName(name)] = true
	z.mu.Unlock()
}
func (z *testDNS) NoChase(name string) {
	z.mu.Lock()
	z.noChase[dns.CanonicalName(name)] = true
	z.mu.Unlock()
}

func (z *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	udp := w.LocalAddr().Network() == "udp"
	if udp {
		z.udpQueries.Add(1)
	} else {
		z.tcpQueries.Add(1)
	}
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.drop[name] {
		return // never answer: the client times out
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if z.servfail[name] {
		m.Rcode = dns.RcodeServerFailure
		_ = w.WriteMsg(m)
		return
	}
	cur := name
	for hops := 0; hops < 10; hops++ {
		rrs, exists := z.rrs[cur]
		if !exists {
			m.Rcode = dns.RcodeNameError
			break
		}
		var match []dns.RR
		var alias *dns.CNAME
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				match = append(match, rr)
			} else if c, ok := rr.(*dns.CNAME); ok {
				alias = c
			}
		}
		if len(match) > 0 {
			m.Answer = append(m.Answer, match...)
			break
		}
		if alias == nil {
			break
		}
		m.Answer = append(m.Answer, alias)
		if z.noChase[cur] {
			break
		}
		cur = dns.CanonicalName(alias.Target)
	}
	if udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
			m.SetEdns0(opt.UDPSize(), false)
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}
