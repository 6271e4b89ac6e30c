// Package netguard keeps outbound connections from reaching inside: every
// address a tenant can point Custos at (webhooks, recipients, OpenDSR
// callbacks and forwards, campaign webhooks and mail servers) is dialed
// through a Guard, which refuses loopback, link-local (cloud metadata),
// private, CGNAT, multicast, unspecified and other special addresses.
//
// The check is made on the address actually dialed, after the Guard's own
// DNS lookup, and the connection goes to that checked address: a name that
// resolves to 127.0.0.1 is refused, and a name whose answer changes between
// a check and the dial (DNS rebinding) cannot slip through, because there
// is no second lookup. An operator allow-list admits chosen networks or
// host names (a development receiver on 127.0.0.1, an internal relay).
package netguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Resolver looks up the addresses of a host (net.Resolver satisfies it).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard dials only addresses outside the special ranges, unless its
// allow-list admits them. The zero value is not usable; call New. A Guard
// is safe for concurrent use.
type Guard struct {
	prefixes []netip.Prefix
	hosts    map[string]bool
	resolver Resolver
	timeout  time.Duration
}

// Options configures a Guard. The zero value is usable.
type Options struct {
	// Allow lists CIDRs ("10.1.0.0/16"), single addresses ("127.0.0.1")
	// and host names ("relay.internal") that may be dialed even though
	// they are refused by default. A host name is admitted by name,
	// whatever it resolves to.
	Allow []string
	// Resolver looks names up (default net.DefaultResolver).
	Resolver Resolver
	// DialTimeout bounds each connection attempt (default 10 s).
	DialTimeout time.Duration
}

// ErrRefused is wrapped by every error of a refused destination.
var ErrRefused = errors.New("outbound address refused")

// New returns a Guard with the allow-list of opts. An entry that is
// neither a CIDR, an address nor a host name is an error naming it.
func New(opts Options) (*Guard, error) {
	g := &Guard{hosts: map[string]bool{}, resolver: opts.Resolver, timeout: opts.DialTimeout}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	if g.timeout <= 0 {
		g.timeout = 10 * time.Second
	}
	if err := g.add(opts.Allow); err != nil {
		return nil, err
	}
	return g, nil
}

// ParseList splits a comma- or space-separated allow-list (the form of the
// --outbound-allow flag) into entries.
func ParseList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// Allow returns a copy of g that also admits entries.
func (g *Guard) Allow(entries ...string) (*Guard, error) {
	c := &Guard{prefixes: append([]netip.Prefix(nil), g.prefixes...), hosts: map[string]bool{}, resolver: g.resolver, timeout: g.timeout}
	for h := range g.hosts {
		c.hosts[h] = true
	}
	if err := c.add(entries); err != nil {
		return nil, err
	}
	return c, nil
}

func (g *Guard) add(entries []string) error {
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			g.prefixes = append(g.prefixes, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
			a = a.Unmap()
			g.prefixes = append(g.prefixes, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		if !validHost(e) {
			return fmt.Errorf("outbound allow-list entry %q is not a CIDR, an address or a host name", e)
		}
		g.hosts[strings.ToLower(strings.TrimSuffix(e, "."))] = true
	}
	return nil
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// Check reports whether ip may be dialed: nil if it is a public address or
// the allow-list admits it, otherwise an error wrapping ErrRefused that
// names the range.
func (g *Guard) Check(ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	for _, p := range g.prefixes {
		if p.Contains(ip) {
			return nil
		}
	}
	if r := Special(ip); r != "" {
		return fmt.Errorf("%w: %s is %s (allow it with --outbound-allow)", ErrRefused, ip, r)
	}
	return nil
}

// CheckHost is the check made when a URL is configured (the hook of
// urlpolicy.Policy.Host): a literal address, or localhost, is refused as
// Check refuses it, so a tenant learns at once that an internal address
// will not be called. A name is not looked up here: what it resolves to
// when called is checked by DialContext, the real defence.
func (g *Guard) CheckHost(host string) error {
	h := strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if g.hosts[h] {
		return nil
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return g.Check(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	}
	if i := strings.IndexByte(h, '%'); i >= 0 {
		h = h[:i] // a zone names an interface, not another address
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		return g.Check(ip)
	}
	return nil
}

// DialContext connects to addr ("host:port") on network, refusing special
// addresses: it resolves host itself, checks every address, and dials the
// checked addresses only, so no later lookup can change the destination.
// Its signature fits http.Transport.DialContext and mail dialers.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	d := &net.Dialer{Timeout: g.timeout}
	admitted := g.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
	if !admitted {
		// A second line of defence: the socket itself refuses a special
		// address, whatever path led to it.
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot parse dialed address %q", ErrRefused, address)
			}
			return g.Check(ap.Addr())
		}
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		lookup := "ip"
		switch network {
		case "tcp4", "udp4":
			lookup = "ip4"
		case "tcp6", "udp6":
			lookup = "ip6"
		}
		ips, err = g.resolver.LookupNetIP(ctx, lookup, host)
		if err != nil {
			return nil, fmt.Errorf("dial %s: look up %s: %w", addr, host, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("dial %s: %s has no address", addr, host)
		}
	}
	// Every address must pass: a name with one public and one internal
	// address is refused rather than tried address by address.
	for _, ip := range ips {
		if admitted {
			break
		}
		if err := g.Check(ip); err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
	}
	var firstErr error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
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

// HTTPClient returns a client whose every connection goes through g, that
// ignores proxy settings (a proxy would dial in g's stead), follows no
// redirect (a 3xx is handed back as the answer) and gives up after
// timeout (default 10 s) for the whole call, body included.
func (g *Guard) HTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            g.DialContext,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           100,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    10 * time.Second,
			ResponseHeaderTimeout:  timeout,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ReadCapped reads at most limit bytes of r; a longer body is an error
// naming the limit, so an answer cannot exhaust memory.
func ReadCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return b, err
	}
	if int64(len(b)) > limit {
		return b[:limit], fmt.Errorf("answer longer than the limit of %d bytes", limit)
	}
	return b, nil
}
