// Package urlpolicy is the one place Custos decides whether a URL given
// from outside is one it may call or name: status callback URLs,
// recipient URLs, OpenDSR status callbacks and processor certificates,
// webhook deliveries, the hosts a record of processing names, and the
// server a load generator targets. Every such check goes through
// Policy.Check, so a rule added here (such as the outbound guard's
// refusal of private addresses, through Policy.Host) holds everywhere.
package urlpolicy

import (
	"fmt"
	"net"
	"net/url"
)

// Policy says which URLs are acceptable. The zero Policy accepts an
// absolute http or https URL with a host and no user name or password.
type Policy struct {
	// HTTPS requires https; with LoopbackHTTP, http stays allowed to a
	// loopback host (development and tests).
	HTTPS        bool
	LoopbackHTTP bool
	// AllowUserInfo accepts user:password@ in the URL. URLs Custos calls
	// never carry credentials: they would end up in logs and records.
	AllowUserInfo bool
	// Host, when set, is asked about the host (without port) of a URL that
	// is otherwise acceptable: the hook of the outbound guard.
	Host func(host string) error
}

// The reasons a URL is refused.
const (
	ReasonInvalid = "invalid" // not an absolute URL with a host
	ReasonScheme  = "scheme"  // a scheme the policy does not allow
	ReasonHost    = "host"    // refused by Policy.Host
)

// Error is why a URL was refused; its message names the field.
type Error struct {
	Field  string
	Reason string // ReasonInvalid, ReasonScheme or ReasonHost
	Err    error  // Policy.Host's answer, for ReasonHost
	msg    string
}

// Error returns the message, naming the field.
func (e *Error) Error() string { return e.msg }

// Unwrap returns Policy.Host's answer, if that is why.
func (e *Error) Unwrap() error { return e.Err }

// Check parses raw, given as field, and returns it if p accepts it.
func (p Policy) Check(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, &Error{Field: field, Reason: ReasonInvalid, msg: fmt.Sprintf("%s must be an absolute http or https URL", field)}
	}
	if u.User != nil && !p.AllowUserInfo {
		return nil, &Error{Field: field, Reason: ReasonInvalid, msg: fmt.Sprintf("%s must not carry a user name or password", field)}
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && (!p.HTTPS || p.LoopbackHTTP && Loopback(u.Hostname())):
	case u.Scheme == "http":
		msg := fmt.Sprintf("%s must use https", field)
		if p.LoopbackHTTP {
			msg += " (http only to a loopback address)"
		}
		return nil, &Error{Field: field, Reason: ReasonScheme, msg: msg}
	default:
		return nil, &Error{Field: field, Reason: ReasonScheme, msg: fmt.Sprintf("%s must be an absolute http or https URL, not %s", field, u.Scheme)}
	}
	if p.Host != nil {
		if err := p.Host(u.Hostname()); err != nil {
			return nil, &Error{Field: field, Reason: ReasonHost, Err: err, msg: fmt.Sprintf("%s: %v", field, err)}
		}
	}
	return u, nil
}

// Loopback reports whether host is localhost or a loopback address.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
