package validation

import (
	"net/netip"
	"testing"
)

func TestAddressAllowed(t *testing.T) {
	cases := []struct {
		ip           string
		allowed      bool // with allowLoopback=false
		loopbackTest bool // with allowLoopback=true
	}{
		{"127.0.0.1", false, true},
		{"127.0.0.2", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"10.0.0.1", false, false},
		{"172.16.0.1", false, false},
		{"172.31.255.255", false, false},
		{"192.168.1.1", false, false},
		{"169.254.169.254", false, false},
		{"169.254.1.1", false, false},
		{"fe80::1", false, false},
		{"fe80::1%eth0", false, false},
		{"fc00::1", false, false},
		{"fd00:ec2::254", false, false},
		{"100.64.0.1", false, false},
		{"100.127.255.254", false, false},
		{"0.0.0.0", false, false},
		{"0.1.2.3", false, false},
		{"::", false, false},
		{"224.0.0.1", false, false},
		{"ff02::1", false, false},
		{"255.255.255.255", false, false},
		{"192.0.2.1", false, false},
		{"198.18.0.1", false, false},
		{"240.0.0.1", false, false},
		{"::ffff:10.0.0.1", false, false},
		{"64:ff9b::a00:1", false, false},
		{"2002:a00:1::1", false, false},
		{"2001:db8::1", false, false},
		{"fec0::1", false, false},
		{"8.8.8.8", true, true},
		{"1.1.1.1", true, true},
		{"100.128.0.1", true, true},
		{"172.32.0.1", true, true},
		{"::ffff:8.8.8.8", true, true},
		{"2a00:1450::1", true, true},
		{"2606:4700:4700::1111", true, true},
	}
	for _, tc := range cases {
		ip := netip.MustParseAddr(tc.ip)
		if got := AddressAllowed(ip, false); got != tc.allowed {
			t.Errorf("AddressAllowed(%s, false) = %v; want %v", tc.ip, got, tc.allowed)
		}
		if got := AddressAllowed(ip, true); got != tc.loopbackTest {
			t.Errorf("AddressAllowed(%s, true) = %v; want %v", tc.ip, got, tc.loopbackTest)
		}
	}
	if AddressAllowed(netip.Addr{}, true) {
		t.Error("the zero Addr must not be allowed")
	}
}
