package netguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// These tests never send a packet to a non-loopback address: refused addresses are checked with a
// Dial that fails the test if called, and accepted public addresses with a Dial that records the
// address and returns an error.

// resolverFunc is a Resolver for tests.
type resolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

// staticResolver resolves every name in m and fails for the others.
func staticResolver(m map[string][]string) Resolver {
	return resolverFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		ss, ok := m[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		addrs := make([]netip.Addr, len(ss))
		for i, s := range ss {
			addrs[i] = netip.MustParseAddr(s)
		}
		return addrs, nil
	})
}

// mustNotDial fails the test if a connection is ever attempted.
func mustNotDial(t *testing.T) func(context.Context, string, string) (net.Conn, error) {
	return func(_ context.Context, network, addr string) (net.Conn, error) {
		t.Errorf("dialled %s %s; the address must be refused before any connection", network, addr)
		return nil, errors.New("must not dial")
	}
}

// recordingDial records each address it is asked for and connects to none of them.
type recordingDial struct {
	mu    sync.Mutex
	addrs []string
}

var errNotDialled = errors.New("test dial: not connecting")

func (r *recordingDial) Dial(_ context.Context, _, addr string) (net.Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = append(r.addrs, addr)
	return nil, errNotDialled
}

func (r *recordingDial) Addrs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.addrs...)
}

func TestRefused(t *testing.T) {
	t.Parallel()

	t.Run("RefusesNonPublic", func(t *testing.T) {
		t.Parallel()
		for _, s := range []string{
			"127.0.0.1", "127.1.2.3", "::1", // loopback
			"10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.1.1", // RFC 1918
			"fc00::1", "fd12:3456::1", // unique local
			"169.254.169.254", "169.254.0.1", "fe80::1", "fe80::1%eth0", // link-local, cloud metadata
			"0.0.0.0", "::", // unspecified
			"224.0.0.1", "239.255.255.250", "ff02::1", "ff05::2", "ff01::1", // multicast
			"100.64.0.1", "100.127.255.255", // CGNAT
			"0.1.2.3", "255.255.255.255", "240.0.0.1", // this network, broadcast, reserved
			"192.0.0.8", "192.0.2.1", "198.18.0.1", "198.19.255.255", "198.51.100.7", "203.0.113.9", // special use
			"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:100.64.0.1", // IPv4-mapped
			"::10.0.0.1", "::ffff:0:10.0.0.1", // IPv4-compatible, IPv4-translated
			"64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b:1::808:808", // NAT64 of private, local-use NAT64
			"2002:a00:1::1", "2002:a9fe:a9fe::1", // 6to4 of 10.0.0.1 and 169.254.169.254
			"2001::1", "2001:db8::1", "100::1", "fec0::1", // Teredo, documentation, discard, site-local
		} {
			require.True(t, Refused(netip.MustParseAddr(s)), "%s must be refused", s)
		}
		require.True(t, Refused(netip.Addr{}), "the invalid address must be refused")
	})

	t.Run("AcceptsPublic", func(t *testing.T) {
		t.Parallel()
		for _, s := range []string{
			"8.8.8.8", "1.1.1.1", "93.184.216.34", "11.0.0.1",
			"172.15.255.255", "172.32.0.1", "192.167.255.255", "192.169.0.1", // around RFC 1918
			"100.63.255.255", "100.128.0.1", "169.253.255.255", "169.255.0.1", // around CGNAT, link-local
			"223.255.255.255", "198.17.255.255", "198.20.0.1",
			"2606:4700:4700::1111", "2a00:1450:4001:80b::200e",
			"::ffff:8.8.8.8",       // IPv4-mapped public
			"64:ff9b::808:808",     // NAT64 of 8.8.8.8
			"2002:808:808::1",      // 6to4 of 8.8.8.8
			"2001:4860:4860::8888", // outside Teredo's 2001::/32
		} {
			require.False(t, Refused(netip.MustParseAddr(s)), "%s must be accepted", s)
		}
	})
}

func TestDialer(t *testing.T) {
	t.Parallel()

	ctx := context.Background()

	t.Run("RefusesPrivateLiteralsBeforeDialing", func(t *testing.T) {
		t.Parallel()
		d := &Dialer{
			Resolver: resolverFunc(func(context.Context, string, string) ([]netip.Addr, error) {
				t.Error("a literal address must not be resolved")
				return nil, errors.New("must not resolve")
			}),
			Dial: mustNotDial(t),
		}
		for addr, shown := range map[string]string{
			"10.0.0.1:80":                 "10.0.0.1",
			"172.16.5.4:443":              "172.16.5.4",
			"192.168.0.1:8080":            "192.168.0.1",
			"169.254.169.254:80":          "169.254.169.254",
			"100.64.0.1:443":              "100.64.0.1",
			"0.0.0.0:80":                  "0.0.0.0",
			"[fd00::1]:443":               "fd00::1",
			"[fe80::1%25eth0]:443":        "fe80::1%25eth0",
			"[::ffff:10.0.0.1]:80":        "10.0.0.1",
			"[::ffff:169.254.169.254]:80": "169.254.169.254",
		} {
			conn, err := d.DialContext(ctx, "tcp", addr)
			require.Nil(t, conn)
			require.ErrorIs(t, err, ErrRefused, addr)
			var re *RefusedError
			require.ErrorAs(t, err, &re)
			require.Empty(t, re.Host)
			require.Equal(t, "private address refused: "+shown, err.Error())
		}
	})

	t.Run("RefusesNameResolvingToMetadata", func(t *testing.T) {
		t.Parallel()
		d := &Dialer{
			Resolver: staticResolver(map[string][]string{"metadata.test": {"169.254.169.254"}}),
			Dial:     mustNotDial(t),
		}
		_, err := d.DialContext(ctx, "tcp", "metadata.test:80")
		require.ErrorIs(t, err, ErrRefused)
		require.EqualError(t, err, "private address refused: metadata.test (169.254.169.254)")
	})

	t.Run("RefusesNameResolvingOnlyToRefusedAddresses", func(t *testing.T) {
		t.Parallel()
		d := &Dialer{
			Resolver: staticResolver(map[string][]string{"mixed.test": {"10.0.0.1", "127.0.0.1", "::ffff:192.168.1.1"}}),
			Dial:     mustNotDial(t),
		}
		_, err := d.DialContext(ctx, "tcp", "mixed.test:443")
		require.ErrorIs(t, err, ErrRefused)
		require.EqualError(t, err, "private address refused: mixed.test (10.0.0.1)")
	})

	t.Run("DialsOnlyPublicAddresses", func(t *testing.T) {
		t.Parallel()
		rec := &recordingDial{}
		d := &Dialer{
			Resolver: staticResolver(map[string][]string{"rebind.test": {
				"10.0.0.1", "93.184.216.34", "169.254.169.254", "2606:4700:4700::1111", "127.0.0.1", "::ffff:8.8.4.4",
			}}),
			Dial: rec.Dial,
		}
		_, err := d.DialContext(ctx, "tcp", "rebind.test:443")
		require.ErrorIs(t, err, errNotDialled)
		require.NotErrorIs(t, err, ErrRefused)
		require.Equal(t, []string{"93.184.216.34:443", "[2606:4700:4700::1111]:443", "[::ffff:8.8.4.4]:443"}, rec.Addrs())
	})

	t.Run("StopsAtFirstConnection", func(t *testing.T) {
		t.Parallel()
		var asked []string
		client, server := net.Pipe()
		t.Cleanup(func() { client.Close(); server.Close() })
		d := &Dialer{
			Resolver: staticResolver(map[string][]string{"two.test": {"93.184.216.34", "8.8.8.8", "1.1.1.1"}}),
			Dial: func(_ context.Context, _, addr string) (net.Conn, error) {
				asked = append(asked, addr)
				if addr == "8.8.8.8:443" {
					return client, nil
				}
				return nil, errNotDialled
			},
		}
		conn, err := d.DialContext(ctx, "tcp", "two.test:443")
		require.NoError(t, err)
		require.Same(t, client, conn)
		require.Equal(t, []string{"93.184.216.34:443", "8.8.8.8:443"}, asked)
	})

	t.Run("ReturnsFirstDialError", func(t *testing.T) {
		t.Parallel()
		first := errors.New("first")
		n := 0
		d := &Dialer{
			Resolver: staticResolver(map[string][]string{"two.test": {"93.184.216.34", "8.8.8.8"}}),
			Dial: func(context.Context, string, string) (net.Conn, error) {
				n++
				if n == 1 {
					return nil, first
				}
				return nil, errors.New("second")
			},
		}
		_, err := d.DialContext(ctx, "tcp", "two.test:443")
		require.ErrorIs(t, err, first)
		require.Equal(t, 2, n)
	})

	t.Run("StopsWhenContextEnds", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(ctx)
		rec := &recordingDial{}
		d := &Dialer{
			Resolver: staticResolver(map[string][]string{"two.test": {"93.184.216.34", "8.8.8.8"}}),
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				rec.Dial(ctx, network, addr)
				cancel()
				return nil, ctx.Err()
			},
		}
		_, err := d.DialContext(ctx, "tcp", "two.test:443")
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, []string{"93.184.216.34:443"}, rec.Addrs())
	})

	t.Run("SharesDeadlineBetweenAddresses", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(ctx, time.Hour)
		t.Cleanup(cancel)
		var deadlines []time.Duration
		d := &Dialer{
			Resolver: staticResolver(map[string][]string{"two.test": {"93.184.216.34", "8.8.8.8"}}),
			Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				dl, ok := ctx.Deadline()
				require.True(t, ok)
				deadlines = append(deadlines, time.Until(dl))
				return nil, errNotDialled
			},
		}
		_, err := d.DialContext(ctx, "tcp", "two.test:443")
		require.ErrorIs(t, err, errNotDialled)
		require.Len(t, deadlines, 2)
		require.InDelta(t, 30*time.Minute, deadlines[0], float64(time.Minute), "the first of two addresses gets half")
		require.InDelta(t, time.Hour, deadlines[1], float64(time.Minute), "the last gets what remains")
	})

	t.Run("LooksUpFamilyOfNetwork", func(t *testing.T) {
		t.Parallel()
		for network, want := range map[string]string{"tcp": "ip", "tcp4": "ip4", "tcp6": "ip6"} {
			var got string
			d := &Dialer{
				Resolver: resolverFunc(func(_ context.Context, n, _ string) ([]netip.Addr, error) {
					got = n
					return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, nil
				}),
				Dial: mustNotDial(t),
			}
			_, err := d.DialContext(ctx, network, "name.test:443")
			require.ErrorIs(t, err, ErrRefused)
			require.Equal(t, want, got)
		}
	})

	t.Run("ResolverErrors", func(t *testing.T) {
		t.Parallel()
		d := &Dialer{Resolver: staticResolver(nil), Dial: mustNotDial(t)}
		_, err := d.DialContext(ctx, "tcp", "nowhere.test:443")
		var dnsErr *net.DNSError
		require.ErrorAs(t, err, &dnsErr)
		require.True(t, dnsErr.IsNotFound)

		d = &Dialer{Resolver: staticResolver(map[string][]string{"empty.test": {}}), Dial: mustNotDial(t)}
		_, err = d.DialContext(ctx, "tcp", "empty.test:443")
		require.ErrorAs(t, err, &dnsErr)
	})

	t.Run("RejectsBadInput", func(t *testing.T) {
		t.Parallel()
		d := &Dialer{Dial: mustNotDial(t)}
		_, err := d.DialContext(ctx, "udp", "10.0.0.1:53")
		require.ErrorContains(t, err, "unsupported network")
		_, err = d.DialContext(ctx, "tcp", "no-port")
		require.Error(t, err)
	})

	t.Run("AllowPrivatePassesEverything", func(t *testing.T) {
		t.Parallel()
		rec := &recordingDial{}
		d := &Dialer{
			AllowPrivate: true,
			Resolver:     staticResolver(map[string][]string{"lan.test": {"10.0.0.1", "192.168.1.1"}}),
			Dial:         rec.Dial,
		}
		_, err := d.DialContext(ctx, "tcp", "lan.test:80")
		require.ErrorIs(t, err, errNotDialled)
		_, err = d.DialContext(ctx, "tcp", "169.254.169.254:80")
		require.ErrorIs(t, err, errNotDialled)
		require.Equal(t, []string{"10.0.0.1:80", "192.168.1.1:80", "169.254.169.254:80"}, rec.Addrs())
	})
}

// TestDialerLoopback goes end to end through an http.Client against real loopback servers.
func TestDialerLoopback(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		srv  *httptest.Server
		hits *atomic.Int64
		port string
	}

	setup := func(t *testing.T, listen string) *testBundle {
		t.Helper()
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			t.Skipf("cannot listen on %s: %v", listen, err)
		}
		hits := &atomic.Int64{}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}))
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		t.Cleanup(srv.Close)
		u, err := url.Parse(srv.URL)
		require.NoError(t, err)
		return &testBundle{srv: srv, hits: hits, port: u.Port()}
	}

	get := func(t *testing.T, d *Dialer, rawURL string) (*http.Response, error) {
		t.Helper()
		client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}

	resolver := staticResolver(map[string][]string{
		"receiver.test": {"127.0.0.1"},
		"both.test":     {"10.0.0.1", "127.0.0.1"},
	})

	for _, tc := range []struct {
		name, listen, host string
	}{
		{"IPv4", "127.0.0.1:0", "127.0.0.1"},
		{"IPv6", "[::1]:0", "[::1]"},
		{"NameResolvingToLoopback", "127.0.0.1:0", "receiver.test"},
	} {
		t.Run(tc.name+"RefusedByDefault", func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.listen)
			_, err := get(t, &Dialer{Resolver: resolver}, "http://"+tc.host+":"+b.port+"/")
			require.ErrorIs(t, err, ErrRefused)
			require.ErrorContains(t, err, "private address refused: ")
			require.Zero(t, b.hits.Load(), "no request may arrive")
		})

		t.Run(tc.name+"AllowedWithAllowPrivate", func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.listen)
			resp, err := get(t, &Dialer{Resolver: resolver, AllowPrivate: true}, "http://"+tc.host+":"+b.port+"/")
			require.NoError(t, err)
			require.Equal(t, http.StatusNoContent, resp.StatusCode)
			require.Equal(t, int64(1), b.hits.Load())
		})
	}

	t.Run("NameResolvingToPrivateAndLoopbackRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "127.0.0.1:0")
		_, err := get(t, &Dialer{Resolver: resolver}, "http://both.test:"+b.port+"/")
		require.ErrorIs(t, err, ErrRefused)
		require.ErrorContains(t, err, "private address refused: both.test (10.0.0.1)")
		require.Zero(t, b.hits.Load())
	})
}

// TestControl checks the second line of defence: the address the socket is about to connect to.
func TestControl(t *testing.T) {
	t.Parallel()

	t.Run("RefusesLoopbackSocketBeforeConnect", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { ln.Close() })

		// A dialer that skips the resolver-level check, as a changed DNS answer would.
		nd := &net.Dialer{Control: control}
		conn, err := nd.DialContext(context.Background(), "tcp", ln.Addr().String())
		require.Nil(t, conn)
		require.ErrorIs(t, err, ErrRefused)
		require.ErrorContains(t, err, "private address refused: 127.0.0.1")
	})

	t.Run("ChecksAddresses", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, control("tcp4", "93.184.216.34:443", nil))
		require.NoError(t, control("tcp6", "[2606:4700:4700::1111]:443", nil))
		require.ErrorIs(t, control("tcp4", "10.0.0.1:443", nil), ErrRefused)
		require.ErrorIs(t, control("tcp6", "[::ffff:169.254.169.254]:80", nil), ErrRefused)
		require.ErrorIs(t, control("tcp", "garbage", nil), ErrRefused, "fails closed")
	})
}
