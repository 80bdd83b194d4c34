// Package netguard decides which IP addresses outbound deliveries may reach (SPEC §6), and dials
// only those.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// ErrRefused matches, with errors.Is, every error of this package that refuses an address.
var ErrRefused = errors.New("private address refused")

// RefusedError says which address was refused, and for which host name when one was resolved.
type RefusedError struct {
	Host string     // the name dialled; empty when it was the address itself
	Addr netip.Addr // the refused address (the first one, when a name resolved to several)
}

// Error reads "private address refused: 10.0.0.1", or "private address refused: db.internal
// (10.0.0.1)" for a name. Loopback and the other refused ranges use the same words: what matters to
// the reader is that the target is not a public address.
func (e *RefusedError) Error() string {
	if e.Host == "" {
		return "private address refused: " + e.Addr.String()
	}
	return "private address refused: " + e.Host + " (" + e.Addr.String() + ")"
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// refusedPrefixes are the ranges that netip.Addr's predicates do not cover. IPv4 ranges also catch
// their IPv4-mapped IPv6 forms because Refused unmaps first.
var refusedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network" (RFC 791); 0.x.x.x reaches the local host on Linux
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT shared address space (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (RFC 6890)
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1, documentation (RFC 5737)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, including the broadcast 255.255.255.255

	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated), ::, ::1
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (RFC 2765)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64 (RFC 8215): translates to private networks
	netip.MustParsePrefix("100::/64"),        // discard-only (RFC 6666)
	netip.MustParsePrefix("2001::/32"),       // Teredo: tunnels to any IPv4 address, private ones included
	netip.MustParsePrefix("2001:db8::/32"),   // documentation (RFC 3849)
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated, RFC 3879)
	netip.MustParsePrefix("2001:10::/28"),    // ORCHID (deprecated)
	netip.MustParsePrefix("2001:2::/48"),     // benchmarking (RFC 5180)
	netip.MustParsePrefix("5f00::/16"),       // SRv6 SIDs (RFC 9602), not hosts
	netip.MustParsePrefix("3fff::/20"),       // documentation (RFC 9637)
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64 prefix (RFC 6052)
	sixTo4 = netip.MustParsePrefix("2002::/16")    // 6to4 (RFC 3056)
)

// Refused reports whether deliveries must not reach ip: loopback, private (RFC 1918, fc00::/7),
// link-local (169.254/16 including cloud metadata, fe80::/10), unspecified, multicast, CGNAT
// 100.64/10, 0/8, reserved 240/4 and broadcast, documentation and benchmarking ranges, and the IPv6
// forms that carry a refused IPv4 address (IPv4-mapped, NAT64, 6to4) or tunnel to arbitrary IPv4
// (Teredo). An invalid address is refused.
func Refused(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	ip = ip.Unmap().WithZone("")
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() ||
		ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range refusedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	// NAT64 and 6to4 addresses embed an IPv4 address that a gateway will connect to.
	if nat64.Contains(ip) {
		b := ip.As16()
		return Refused(netip.AddrFrom4([4]byte(b[12:16])))
	}
	if sixTo4.Contains(ip) {
		b := ip.As16()
		return Refused(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return false
}

// Resolver looks up the addresses of a host; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer dials TCP connections only to addresses that Refused accepts, unless AllowPrivate is set.
// Use its DialContext as an http.Transport's DialContext. The zero value is ready to use. Safe for
// concurrent use; do not change its fields once it is in use.
//
// It resolves host names itself and dials the accepted addresses one by one, so that a name
// resolving to both kinds is dialled only on its public ones and a DNS answer that changes between
// a check and the dial (DNS rebinding) cannot slip through. The default dial function checks again,
// in net.Dialer.Control, the address the socket is about to connect to.
type Dialer struct {
	// Resolver resolves host names. Defaults to net.DefaultResolver.
	Resolver Resolver
	// AllowPrivate lifts every check (--allow-private-targets), for development and tests.
	AllowPrivate bool
	// Dial connects to a literal "ip:port" that passed the check. Defaults to a net.Dialer whose
	// Control refuses what Refused refuses; a replacement (for tests) does its own checking.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialContext connects to addr ("host:port") on network "tcp", "tcp4" or "tcp6". When every
// address of the host is refused it returns a *RefusedError (errors.Is(err, ErrRefused)) without
// opening any connection. Otherwise it tries the accepted addresses in order, each with a share of
// the time left before ctx's deadline, until one connects or ctx ends, and returns the first dial
// error.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var lookupNet string
	switch network {
	case "tcp":
		lookupNet = "ip"
	case "tcp4":
		lookupNet = "ip4"
	case "tcp6":
		lookupNet = "ip6"
	default:
		return nil, fmt.Errorf("netguard: unsupported network %q", network)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}

	var addrs []netip.Addr
	name := host
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs, name = []netip.Addr{ip}, ""
	} else {
		r := d.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		addrs, err = r.LookupNetIP(ctx, lookupNet, host)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
	}

	allowed := addrs
	if !d.AllowPrivate {
		allowed = make([]netip.Addr, 0, len(addrs))
		for _, a := range addrs {
			if !Refused(a) {
				allowed = append(allowed, a)
			}
		}
		if len(allowed) == 0 {
			return nil, &RefusedError{Host: name, Addr: addrs[0].Unmap()}
		}
	}

	dial := d.Dial
	if dial == nil {
		nd := &net.Dialer{}
		if !d.AllowPrivate {
			nd.Control = control
		}
		dial = nd.DialContext
	}
	var firstErr error
	for i, a := range allowed {
		conn, err := dialOne(ctx, dial, network, net.JoinHostPort(a.String(), port), len(allowed)-i)
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// minPerAddress is the least time an address gets when several share the deadline, as in package net.
const minPerAddress = 2 * time.Second

// dialOne dials one of left addresses. Like net.Dialer it gives each a share of the time that remains,
// so that one address that drops packets does not use up the whole deadline of a multi-address host.
func dialOne(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), network, addr string, left int) (net.Conn, error) {
	if deadline, ok := ctx.Deadline(); ok && left > 1 {
		remaining := time.Until(deadline)
		share := max(remaining/time.Duration(left), min(minPerAddress, remaining))
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, share)
		defer cancel()
	}
	return dial(ctx, network, addr)
}

// control runs after the socket is created and before it connects: the last place to check the
// address actually dialled, whatever resolved it.
func control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: an address we cannot read is not one we can vouch for.
		return fmt.Errorf("%w: unreadable address %q", ErrRefused, address)
	}
	if Refused(ap.Addr()) {
		return &RefusedError{Addr: ap.Addr().Unmap()}
	}
	return nil
}
