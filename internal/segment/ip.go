package segment

import (
	"bytes"
	"net/netip"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/custos-dev/custos"
)

// Data minimisation (Art. 5(1)(c)): context.ip identifies a household or
// a person; its network part is enough for coarse geography and abuse
// handling. TruncateIP keeps the first 24 bits of an IPv4 address and the
// first 48 of an IPv6 address; a value that is not an IP address cannot
// be truncated, so it is dropped (the member becomes "").

// IPv4Bits and IPv6Bits are the prefix lengths an address is truncated to.
const (
	IPv4Bits = 24
	IPv6Bits = 48
)

// TruncateIP returns the network part of an IP address as text, or "" if
// s is not one. A port ("1.2.3.4:5678"), brackets and an IPv6 zone are
// removed first; an IPv4-mapped IPv6 address is truncated as IPv4.
func TruncateIP(s string) string {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return ""
		}
		a = ap.Addr()
	}
	a = a.WithZone("").Unmap()
	bits := IPv6Bits
	if a.Is4() {
		bits = IPv4Bits
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.Addr().String()
}

// TruncateContextIP returns ctx, a JSON object, with its top-level "ip"
// member truncated by TruncateIP. It returns ctx itself when nothing
// changes, so contexts shared between messages stay shared; a new slice
// otherwise. Anything that is not an object with a string "ip" is
// returned as it is.
func TruncateContextIP(ctx []byte) []byte {
	// Fast path: no member can be called ip without these bytes, or an
	// escape that spells them.
	if len(ctx) == 0 || ctx[0] != '{' || !bytes.Contains(ctx, []byte(`"ip"`)) && !bytes.Contains(ctx, []byte(`\u`)) {
		return ctx
	}
	var out []byte
	copied := 0 // ctx[:copied] is in out
	var scratch []byte
	ok := members(ctx, func(s memberSpan) bool {
		// Every "ip" member, should one be repeated, is truncated.
		v := ctx[s.valueStart:s.valueEnd]
		if string(stringBytes(ctx[s.nameStart:s.nameEnd], &scratch)) != "ip" || v[0] != '"' {
			return true
		}
		orig := unquote(v, &scratch)
		short := TruncateIP(orig)
		if short == orig {
			return true
		}
		if out == nil {
			out = make([]byte, 0, len(ctx))
		}
		out = append(out, ctx[copied:s.valueStart]...)
		out, _ = jsontext.AppendQuote(out, short)
		copied = int(s.valueEnd)
		return true
	})
	if !ok || out == nil {
		return ctx
	}
	return append(out, ctx[copied:]...)
}

// TruncateIPs truncates context.ip in every message, as TruncateContextIP.
// Messages that share one context (the batch-level one) share the
// truncated copy too.
func TruncateIPs(msgs []custos.Message) {
	var lastIn, lastOut []byte
	for i := range msgs {
		c := msgs[i].Context
		if len(c) == 0 {
			continue
		}
		if len(lastIn) == len(c) && &lastIn[0] == &c[0] {
			msgs[i].Context = lastOut
			continue
		}
		lastIn, lastOut = c, TruncateContextIP(c)
		msgs[i].Context = lastOut
	}
}
