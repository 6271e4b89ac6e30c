package netguard_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/netguard"
)

// fakeResolver answers every name from its map, like a DNS server an
// attacker controls.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range f[host] {
		out = append(out, netip.MustParseAddr(s))
	}
	if out == nil {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

func TestSpecial(t *testing.T) {
	refused := []string{
		"127.0.0.1", "127.9.9.9", "::1", "0.0.0.0", "::", "10.1.2.3", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "100.64.0.1", "100.127.255.254", "169.254.169.254", "fe80::1", "fc00::1", "fd12::1",
		"224.0.0.1", "ff02::1", "255.255.255.255", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
		"64:ff9b::7f00:1", "2002:7f00:1::", "198.18.0.1", "192.0.2.1", "2001:db8::1",
	}
	for _, s := range refused {
		if netguard.Special(netip.MustParseAddr(s)) == "" {
			t.Errorf("Special(%s) = \"\", want a named range", s)
		}
	}
	public := []string{"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "64:ff9b::808:808", "::ffff:8.8.8.8"}
	for _, s := range public {
		if r := netguard.Special(netip.MustParseAddr(s)); r != "" {
			t.Errorf("Special(%s) = %q, want public", s, r)
		}
	}
}

func TestNameResolvingToLoopbackRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "inside") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	// A public-looking name whose DNS answer is the loopback address.
	g, err := netguard.New(netguard.Options{Resolver: fakeResolver{
		"hooks.example.com": {"127.0.0.1"},
		"mixed.example.com": {"93.184.215.14", "127.0.0.1"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"hooks.example.com", "mixed.example.com", "127.0.0.1", "[::1]", "169.254.169.254"} {
		resp, err := g.HTTPClient(2 * time.Second).Get("http://" + net.JoinHostPort(strings.Trim(host, "[]"), port) + "/")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET via %s reached the loopback server (status %d), want refused", host, resp.StatusCode)
		}
		if !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("GET via %s: err = %v, want ErrRefused", host, err)
		}
	}
	// The raw dialer refuses as well (mail uses it).
	if _, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort("hooks.example.com", port)); !errors.Is(err, netguard.ErrRefused) {
		t.Errorf("DialContext hooks.example.com: err = %v, want ErrRefused", err)
	}
}

// TestRebindingCannotPass: the guard dials the address it checked, so a
// resolver that answers a public address first and loopback afterwards
// (a rebinding attack) never gets the connection to loopback.
func TestRebindingCannotPass(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "inside") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	r := &flipResolver{}
	g, _ := netguard.New(netguard.Options{Resolver: r, DialTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	c, err := g.DialContext(ctx, "tcp", net.JoinHostPort("rebind.example.com", port))
	if err == nil {
		defer c.Close()
		if ap, _ := netip.ParseAddrPort(c.RemoteAddr().String()); ap.Addr().IsLoopback() {
			t.Fatalf("rebinding reached %s", c.RemoteAddr())
		}
	}
	if r.calls != 1 {
		t.Errorf("resolver called %d times, want once (a second lookup is what rebinding exploits)", r.calls)
	}
}

type flipResolver struct{ calls int }

func (f *flipResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	f.calls++
	if f.calls == 1 {
		return []netip.Addr{netip.MustParseAddr("192.0.43.10")}, nil // public: passes the check
	}
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

func TestRedirectToMetadataRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	}))
	defer srv.Close()
	g, err := netguard.New(netguard.Options{Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	// The guard's client hands the 3xx back instead of following it.
	resp, err := g.HTTPClient(2 * time.Second).Get(srv.URL)
	if err != nil {
		t.Fatalf("GET %s: %v", srv.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("status = %d, want 302 handed back, not followed", resp.StatusCode)
	}
	// A client that does follow redirects but dials through the guard is
	// refused at the redirect's dial.
	follow := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: g.DialContext}}
	resp, err = follow.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("following the redirect to 169.254.169.254 succeeded with %d, want refused", resp.StatusCode)
	}
	if !errors.Is(err, netguard.ErrRefused) {
		t.Errorf("err = %v, want ErrRefused", err)
	}
}

func TestAllowList(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	res := fakeResolver{"dev.example.com": {"127.0.0.1"}, "relay.internal": {"127.0.0.1"}}
	for _, tc := range []struct {
		allow []string
		host  string
	}{
		{[]string{"127.0.0.0/8"}, "127.0.0.1"},
		{[]string{"127.0.0.1"}, "dev.example.com"},
		{[]string{"relay.internal"}, "relay.internal"},
		{netguard.ParseList("10.0.0.0/8, 127.0.0.0/8"), "dev.example.com"},
	} {
		g, err := netguard.New(netguard.Options{Allow: tc.allow, Resolver: res})
		if err != nil {
			t.Fatalf("New(%v): %v", tc.allow, err)
		}
		resp, err := g.HTTPClient(2 * time.Second).Get("http://" + net.JoinHostPort(tc.host, port) + "/")
		if err != nil {
			t.Errorf("allow %v, GET %s: %v, want admitted", tc.allow, tc.host, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Errorf("allow %v, GET %s: body %q", tc.allow, tc.host, b)
		}
	}
	// An allow-list for another network admits nothing here.
	g, _ := netguard.New(netguard.Options{Allow: []string{"10.0.0.0/8", "other.internal"}, Resolver: res})
	if _, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort("dev.example.com", port)); !errors.Is(err, netguard.ErrRefused) {
		t.Errorf("allow 10/8: err = %v, want ErrRefused", err)
	}
	if _, err := netguard.New(netguard.Options{Allow: []string{"not a host!"}}); err == nil || !strings.Contains(err.Error(), "not a host!") {
		t.Errorf("bad entry: err = %v, want one naming it", err)
	}
}

func TestReadCapped(t *testing.T) {
	if _, err := netguard.ReadCapped(strings.NewReader(strings.Repeat("x", 11)), 10); err == nil || !strings.Contains(err.Error(), "10 bytes") {
		t.Errorf("11 bytes with a cap of 10: err = %v, want one naming the limit", err)
	}
	if b, err := netguard.ReadCapped(strings.NewReader("0123456789"), 10); err != nil || len(b) != 10 {
		t.Errorf("10 bytes with a cap of 10: %q, %v", b, err)
	}
}

// TestCheckHost: at configuration time literal internal addresses and
// localhost are refused, names are left to the dial-time check, and the
// allow-list admits what it names.
func TestCheckHost(t *testing.T) {
	g, err := netguard.New(netguard.Options{Allow: []string{"10.1.0.0/16", "relay.internal"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host    string
		refused bool
	}{
		{"203.0.113.9", true}, // documentation range: special
		{"8.8.8.8", false},
		{"127.0.0.1", true},
		{"[::1]", true},
		{"::1", true},
		{"169.254.169.254", true},
		{"fe80::1%eth0", true},
		{"10.0.0.1", true},
		{"10.1.2.3", false}, // allowed CIDR
		{"localhost", true},
		{"LOCALHOST.", true},
		{"api.localhost", true},
		{"example.com", false},
		{"relay.internal", false},
		{"0.0.0.0", true},
		{"::ffff:127.0.0.1", true},
	} {
		err := g.CheckHost(c.host)
		if c.refused != (err != nil) {
			t.Errorf("CheckHost(%q) = %v, want refused %v", c.host, err, c.refused)
		}
		if err != nil && !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("CheckHost(%q) = %v, does not wrap ErrRefused", c.host, err)
		}
	}
}
