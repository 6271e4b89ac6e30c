package urlpolicy

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	refuse := errors.New("private address")
	for _, c := range []struct {
		name   string
		p      Policy
		raw    string
		reason string // "" accepted
	}{
		{"https", Policy{}, "https://example.com/hook", ""},
		{"http", Policy{}, "http://example.com/hook", ""},
		{"relative", Policy{}, "/hook", ReasonInvalid},
		{"no host", Policy{}, "https:///hook", ReasonInvalid},
		{"opaque", Policy{}, "https:example.com", ReasonInvalid},
		{"garbage", Policy{}, "http://[::1", ReasonInvalid},
		{"ftp", Policy{}, "ftp://example.com/x", ReasonScheme},
		{"user info", Policy{}, "https://u:p@example.com/", ReasonInvalid},
		{"user info allowed", Policy{AllowUserInfo: true}, "https://u:p@example.com/", ""},
		{"https only", Policy{HTTPS: true}, "http://example.com/", ReasonScheme},
		{"https only, loopback", Policy{HTTPS: true}, "http://127.0.0.1:8080/", ReasonScheme},
		{"loopback http", Policy{HTTPS: true, LoopbackHTTP: true}, "http://127.0.0.1:8080/", ""},
		{"loopback http localhost", Policy{HTTPS: true, LoopbackHTTP: true}, "http://localhost/", ""},
		{"loopback http, not loopback", Policy{HTTPS: true, LoopbackHTTP: true}, "http://10.0.0.1/", ReasonScheme},
		{"host hook", Policy{Host: func(h string) error {
			if h == "10.0.0.1" {
				return refuse
			}
			return nil
		}}, "https://10.0.0.1:443/", ReasonHost},
		{"host hook passes", Policy{Host: func(string) error { return nil }}, "https://example.com/", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, err := c.p.Check("callback_url", c.raw)
			if c.reason == "" {
				if err != nil || u == nil {
					t.Fatalf("Check(%q) = %v, %v; want accepted", c.raw, u, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Check(%q) error = %v; want *Error with reason %s", c.raw, err, c.reason)
			}
			if e.Reason != c.reason || e.Field != "callback_url" {
				t.Errorf("Check(%q) = reason %q field %q; want %q, callback_url", c.raw, e.Reason, e.Field, c.reason)
			}
			if c.reason == ReasonHost && !errors.Is(err, refuse) {
				t.Errorf("Check(%q) error %v does not wrap the hook's error", c.raw, err)
			}
			if len(e.Error()) < len("callback_url") || e.Error()[:len("callback_url")] != "callback_url" {
				t.Errorf("Check(%q) message %q does not start with the field", c.raw, e.Error())
			}
		})
	}
}
