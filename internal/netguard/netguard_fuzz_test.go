package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"testing"
)

// FuzzDialer: a refused address never dials. The fuzzer picks a host (a name or a literal), a port,
// the addresses an injected resolver answers for names, and the network. No connection is ever
// opened: the Dial given to the Dialer records the address and returns an error, and asserts first
// that the address is not refused and that the socket-level hook (control) lets it through too.
// Every refused address is also sent through a real net.Dialer whose Control runs control and fails
// the test, without connecting, should control ever let it pass: so even a bug sends no packet.
// Seeds: testdata/fuzz/FuzzDialer. Run: go test ./internal/netguard -run '^$' -fuzz '^FuzzDialer$'.
func FuzzDialer(f *testing.F) {
	f.Add("hooks.example.com", uint16(443), []byte{0, 93, 184, 216, 34}, uint8(0), false)
	f.Add("rebind.example", uint16(80), []byte{0, 10, 0, 0, 1, 0, 93, 184, 216, 34, 0, 127, 0, 0, 1}, uint8(0), false)
	f.Add("127.0.0.1", uint16(8080), []byte{}, uint8(0), false)
	f.Add("::ffff:169.254.169.254", uint16(80), []byte{}, uint8(2), false)
	f.Add("fe80::1%eth0", uint16(443), []byte{}, uint8(0), false)
	f.Add("64:ff9b::a00:1", uint16(443), []byte{}, uint8(0), false)
	f.Add("2002:c0a8:101::1", uint16(443), []byte{}, uint8(0), false)
	f.Add("mapped.example", uint16(443), append([]byte{1}, netip.MustParseAddr("::ffff:10.1.2.3").AsSlice()...), uint8(0), false)
	f.Add("teredo.example", uint16(443), append([]byte{3}, netip.MustParseAddr("2001:0:4136:e378:8000:63bf:3fff:fdd2").AsSlice()...), uint8(1), false)
	f.Add("empty.example", uint16(0), []byte{}, uint8(3), false)
	f.Add("dev.example", uint16(3000), []byte{0, 192, 168, 1, 5}, uint8(0), true)
	f.Add("0177.0.0.1", uint16(443), []byte{0, 127, 0, 0, 1}, uint8(0), false)
	networks := []string{"tcp", "tcp4", "tcp6", "udp"}
	f.Fuzz(func(t *testing.T, host string, port uint16, resolved []byte, pickNet uint8, allowPrivate bool) {
		network := networks[int(pickNet)%len(networks)]
		answer := addrsOf(resolved)
		for _, a := range answer {
			checkRefusedForms(t, a)
			checkHook(t, a, port)
		}
		if a, err := netip.ParseAddr(host); err == nil {
			checkRefusedForms(t, a)
			checkHook(t, a, port)
		}

		target := net.JoinHostPort(host, strconv.Itoa(int(port)))
		name, _, splitErr := net.SplitHostPort(target)
		looked := false
		var dialled []string
		d := &Dialer{
			AllowPrivate: allowPrivate,
			Resolver: resolverFunc(func(_ context.Context, _, lookup string) ([]netip.Addr, error) {
				looked = true
				if lookup != name {
					t.Errorf("resolver asked for %q; the host is %q", lookup, name)
				}
				return slices.Clone(answer), nil
			}),
			Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
				ap, err := netip.ParseAddrPort(addr)
				if err != nil {
					t.Fatalf("dialled %q, not an ip:port", addr)
				}
				if !allowPrivate && (Refused(ap.Addr()) || control("tcp", addr, nil) != nil) {
					t.Fatalf("dialled %s, a refused address (host %q)", addr, host)
				}
				dialled = append(dialled, addr)
				return nil, errNotDialled
			},
		}
		conn, err := d.DialContext(context.Background(), network, target)
		if conn != nil {
			t.Fatalf("a connection was returned")
		}
		if network == "udp" || splitErr != nil {
			if looked || len(dialled) > 0 || err == nil {
				t.Fatalf("%s %q: looked up %v, dialled %v, err %v", network, target, looked, dialled, err)
			}
			return
		}

		// What should have been dialled, in order.
		var candidates []netip.Addr
		if a, perr := netip.ParseAddr(name); perr == nil {
			candidates = []netip.Addr{a}
			if looked {
				t.Fatalf("the literal %q was sent to the resolver", host)
			}
		} else {
			candidates = answer
		}
		var want []string
		for _, a := range candidates {
			if allowPrivate || !Refused(a) {
				want = append(want, net.JoinHostPort(a.String(), strconv.Itoa(int(port))))
			}
		}
		if !slices.Equal(dialled, want) {
			t.Fatalf("host %q, answer %v: dialled %v, want %v", host, answer, dialled, want)
		}
		switch {
		case len(candidates) == 0:
			var dnsErr *net.DNSError
			if !errors.As(err, &dnsErr) {
				t.Fatalf("no addresses: want a DNS error, got %v", err)
			}
		case len(want) == 0:
			var refused *RefusedError
			if !errors.As(err, &refused) || !errors.Is(err, ErrRefused) || refused.Addr != candidates[0].Unmap() {
				t.Fatalf("every address refused: want a RefusedError for %s, got %#v", candidates[0], err)
			}
		default:
			if !errors.Is(err, errNotDialled) {
				t.Fatalf("want the dial's own error, got %v", err)
			}
		}
	})
}

// addrsOf reads up to 8 addresses from b: a tag byte (bit 0: IPv6, bit 1: with a zone), then 4 or
// 16 bytes.
func addrsOf(b []byte) []netip.Addr {
	var out []netip.Addr
	for len(b) > 0 && len(out) < 8 {
		tag := b[0]
		b = b[1:]
		var a netip.Addr
		if tag&1 == 0 {
			if len(b) < 4 {
				break
			}
			a, b = netip.AddrFrom4([4]byte(b[:4])), b[4:]
		} else {
			if len(b) < 16 {
				break
			}
			a, b = netip.AddrFrom16([16]byte(b[:16])), b[16:]
			if tag&2 != 0 {
				a = a.WithZone("eth0")
			}
		}
		out = append(out, a)
	}
	return out
}

// checkRefusedForms: the verdict on an address does not depend on its spelling. An IPv4 address and
// its IPv4-mapped form get the same verdict, a zone changes nothing, and a refused IPv4 address
// stays refused behind NAT64 and 6to4; every address that the standard library calls loopback,
// private, link-local, unspecified or multicast is refused.
func checkRefusedForms(t *testing.T, a netip.Addr) {
	t.Helper()
	r := Refused(a)
	if a.Is4In6() && Refused(a.Unmap()) != r {
		t.Fatalf("%s and %s disagree", a, a.Unmap())
	}
	if a.Is6() && Refused(a.WithZone("")) != r {
		t.Fatalf("%s: the zone changed the verdict", a)
	}
	if (a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast()) && !r {
		t.Fatalf("%s is not refused", a)
	}
	if a4 := a.Unmap(); a4.Is4() {
		b := a4.As4()
		mapped := netip.AddrFrom16(a4.As16())
		nat64 := netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b, 10: 0, 11: 0, 12: b[0], 13: b[1], 14: b[2], 15: b[3]})
		sixTo4 := netip.AddrFrom16([16]byte{0x20, 0x02, b[0], b[1], b[2], b[3], 15: 1})
		for _, form := range []netip.Addr{mapped, nat64, sixTo4} {
			if Refused(a4) && !Refused(form) {
				t.Fatalf("%s is refused but %s, which reaches it, is not", a4, form)
			}
		}
		if Refused(mapped) != Refused(a4) {
			t.Fatalf("%s and %s disagree", a4, mapped)
		}
	}
}

var errHookPassed = errors.New("test control: let through, not connecting")

// checkHook sends a refused address through a real net.Dialer whose Control is control: it must
// refuse it. Should it not, the wrapper fails the test and still aborts before connect(2), so no
// packet ever leaves. An address that cannot be dialled at all (a zone naming no interface, no
// IPv6 on the machine) fails before the hook, which is fine: nothing was sent either.
func checkHook(t *testing.T, a netip.Addr, port uint16) {
	t.Helper()
	if !Refused(a) {
		return
	}
	nd := &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		if err := control(network, address, c); err != nil {
			return err
		}
		t.Errorf("control let %s (%s) through", address, a)
		return errHookPassed
	}}
	conn, err := nd.DialContext(context.Background(), "tcp", net.JoinHostPort(a.String(), strconv.Itoa(int(port))))
	if conn != nil {
		conn.Close()
		t.Fatalf("connected to refused %s", a)
	}
	if err == nil {
		t.Fatalf("dialling refused %s returned no error", a)
	}
}

// FuzzControl: the socket-level hook, given any address text, refuses exactly what it cannot read
// and what Refused refuses. Seeds: testdata/fuzz/FuzzControl.
func FuzzControl(f *testing.F) {
	for _, s := range []string{"93.184.216.34:443", "[2606:4700:4700::1111]:443", "10.0.0.1:443", "[::ffff:169.254.169.254]:80",
		"garbage", "[fe80::1%eth0]:80", "127.0.0.1", "[::1]:0", "0.0.0.0:80", "[64:ff9b::7f00:1]:80", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, address string) {
		err := control("tcp", address, nil)
		ap, perr := netip.ParseAddrPort(address)
		switch {
		case perr != nil || Refused(ap.Addr()):
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("control(%q) = %v; want refused", address, err)
			}
		case err != nil:
			t.Fatalf("control(%q) = %v; want accepted", address, err)
		}
	})
}
