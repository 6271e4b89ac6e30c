package opendsr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/custos-dev/custos/internal/urlpolicy"
)

// DefaultMaxClockSkew is how far in the future a submitted_time may lie
// when Options.MaxClockSkew is zero: the controller's clock may run a
// little ahead of ours.
const DefaultMaxClockSkew = 5 * time.Minute

// maxIdentityValue bounds an identity value; longer ones are not
// identifiers but abuse.
const maxIdentityValue = 1024

// Bounds of a submitted request, each named in its refusal: every
// identity is looked up and every callback URL is called on each status
// change, so their numbers bound the work one request makes.
const (
	MaxIdentities   = 20
	MaxCallbackURLs = 5
	MaxURLLen       = 2048
)

// Options adjusts request validation. The zero value is the production
// setting.
type Options struct {
	// AllowInsecureCallbacks accepts http:// callback URLs. Only tests,
	// which call back to an httptest.Server, should set it.
	AllowInsecureCallbacks bool
	// MaxClockSkew is how far in the future submitted_time may be;
	// zero means DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	// V1 parses a request sent to the version 1 (OpenGDPR) routes:
	// regulation did not exist then, and gdpr is implied.
	V1 bool
	// CallbackHost, if set, is asked about the host of each status
	// callback URL (the outbound guard's CheckHost): a refused host makes
	// the request invalid, naming the URL.
	CallbackHost func(host string) error
}

// ParseRequest decodes and validates a request body with the zero
// Options. See Options.ParseRequest.
func ParseRequest(body []byte, now time.Time) (*Request, error) {
	return Options{}.ParseRequest(body, now)
}

// ParseRequest decodes a request body and validates it against the
// specification and what Custos supports. If the body is invalid it
// returns an *Error with status 400 that names every problem found, one
// ErrorDetail each; the body must be JSON of the right shape before its
// fields are checked. A missing api_version is accepted, as the
// specification makes it optional; "1.0" is accepted for version 1
// clients. Identities carried only in extensions are not supported: at
// least one subject_identities entry is required.
func (o Options) ParseRequest(body []byte, now time.Time) (*Request, error) {
	// submitted_time is decoded as a string so a bad one is reported
	// like every other problem, not as a JSON failure.
	var w struct {
		Request
		SubmittedTime string `json:"submitted_time"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, invalid([]ErrorDetail{{DomainValidation, ReasonMalformed,
				fmt.Sprintf("%s: wrong JSON type (got %s)", te.Field, te.Value)}})
		}
		return nil, invalid([]ErrorDetail{{DomainValidation, ReasonMalformed, "body is not a JSON object"}})
	}
	r := w.Request
	if o.V1 && r.Regulation == "" {
		r.Regulation = "gdpr"
	}
	var v validator
	v.regulation(r.Regulation)
	v.requestID(r.SubjectRequestID)
	v.requestType(r.SubjectRequestType)
	r.SubmittedTime = v.submittedTime(w.SubmittedTime, now, o.maxSkew())
	v.identities(r.SubjectIdentities)
	v.apiVersion(r.APIVersion)
	v.callbacks(r.StatusCallbackURLs, o.AllowInsecureCallbacks, o.CallbackHost)
	if len(v.problems) > 0 {
		return nil, invalid(v.problems)
	}
	return &r, nil
}

func (o Options) maxSkew() time.Duration {
	if o.MaxClockSkew > 0 {
		return o.MaxClockSkew
	}
	return DefaultMaxClockSkew
}

func invalid(problems []ErrorDetail) *Error {
	msg := problems[0].Message
	if len(problems) > 1 {
		msg = fmt.Sprintf("%d problems in the request", len(problems))
	}
	return NewError(http.StatusBadRequest, msg, problems...)
}

// validator collects every problem of a request rather than stopping at
// the first, so a controller fixes them in one round.
type validator struct {
	problems []ErrorDetail
}

func (v *validator) add(reason, format string, args ...any) {
	v.problems = append(v.problems, ErrorDetail{DomainValidation, reason, fmt.Sprintf(format, args...)})
}

func (v *validator) regulation(s string) {
	switch s {
	case "gdpr":
	case "":
		v.add(ReasonRequired, "regulation is required")
	default:
		v.add(ReasonUnsupported, "regulation %q is not supported (want \"gdpr\")", clip(s))
	}
}

func (v *validator) requestID(s string) {
	switch {
	case s == "":
		v.add(ReasonRequired, "subject_request_id is required")
	case !isUUIDv4(s):
		v.add(ReasonInvalid, "subject_request_id %q is not a lowercase UUID v4", clip(s))
	}
}

func (v *validator) requestType(s string) {
	switch s {
	case TypeAccess, TypePortability, TypeErasure:
	case "":
		v.add(ReasonRequired, "subject_request_type is required")
	default:
		v.add(ReasonUnsupported, "subject_request_type %q is not supported (want access, portability or erasure)", clip(s))
	}
}

func (v *validator) submittedTime(s string, now time.Time, skew time.Duration) time.Time {
	if s == "" {
		v.add(ReasonRequired, "submitted_time is required")
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		v.add(ReasonInvalid, "submitted_time %q is not an RFC 3339 time", clip(s))
		return time.Time{}
	}
	if t.After(now.Add(skew)) {
		v.add(ReasonInvalid, "submitted_time %s is in the future", s)
	}
	return t
}

func (v *validator) identities(ids []SubjectIdentity) {
	if len(ids) == 0 {
		v.add(ReasonRequired, "subject_identities must hold at least one identity")
		return
	}
	if len(ids) > MaxIdentities {
		v.add(ReasonInvalid, "subject_identities holds %d identities; the limit is %d", len(ids), MaxIdentities)
		return
	}
	// Messages name an identity by its index, never by its value.
	for i, id := range ids {
		name := fmt.Sprintf("subject_identities[%d]", i)
		switch id.IdentityType {
		case IdentityControllerCustomerID, IdentityEmail, IdentityAndroidAdvertisingID,
			IdentityIOSAdvertisingID, IdentityIOSVendorID, IdentityAndroidID:
		case "":
			v.add(ReasonRequired, "%s.identity_type is required", name)
		default:
			v.add(ReasonUnsupported, "%s.identity_type %q is not supported (want controller_customer_id, email, android_advertising_id, ios_advertising_id, ios_vendor_id or android_id)", name, clip(id.IdentityType))
		}
		switch id.IdentityFormat {
		case FormatRaw, FormatSHA256:
		case "":
			v.add(ReasonRequired, "%s.identity_format is required", name)
		default:
			v.add(ReasonUnsupported, "%s.identity_format %q is not supported (want raw or sha256)", name, clip(id.IdentityFormat))
		}
		switch val := id.IdentityValue; {
		case strings.TrimSpace(val) == "":
			v.add(ReasonRequired, "%s.identity_value is required", name)
		case len(val) > maxIdentityValue:
			v.add(ReasonInvalid, "%s.identity_value is longer than %d bytes", name, maxIdentityValue)
		case id.IdentityFormat == FormatSHA256 && !isSHA256Hex(val):
			v.add(ReasonInvalid, "%s.identity_value is not 64 lowercase hex characters, as sha256 requires", name)
		case id.IdentityFormat == FormatRaw && id.IdentityType == IdentityEmail && !strings.Contains(val, "@"):
			v.add(ReasonInvalid, "%s.identity_value is not an e-mail address", name)
		}
	}
}

func (v *validator) apiVersion(s string) {
	switch s {
	case "", APIVersion, APIVersionV1:
	default:
		v.add(ReasonUnsupported, "api_version %q is not supported (want %q or %q)", clip(s), APIVersion, APIVersionV1)
	}
}

func (v *validator) callbacks(urls []string, insecure bool, host func(string) error) {
	if len(urls) > MaxCallbackURLs {
		v.add(ReasonInvalid, "status_callback_urls holds %d URLs; the limit is %d", len(urls), MaxCallbackURLs)
		return
	}
	for i, s := range urls {
		name := fmt.Sprintf("status_callback_urls[%d]", i)
		if len(s) > MaxURLLen {
			v.add(ReasonInvalid, "%s is %d bytes; the limit is %d", name, len(s), MaxURLLen)
			continue
		}
		_, err := urlpolicy.Policy{HTTPS: !insecure, Host: host}.Check(name, s)
		var e *urlpolicy.Error
		switch {
		case err == nil:
		case errors.As(err, &e) && e.Reason == urlpolicy.ReasonScheme:
			v.add(ReasonUnsupported, "%s must use https", name)
		case errors.As(err, &e) && e.Reason == urlpolicy.ReasonHost:
			v.add(ReasonInvalid, "%v", err)
		default:
			v.add(ReasonInvalid, "%s is not an absolute URL", name)
		}
	}
}

// isUUIDv4 reports whether s is a lowercase, hyphenated UUID of version 4
// and the RFC 4122 variant.
func isUUIDv4(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isLowerHex(c) {
				return false
			}
		}
	}
	return s[14] == '4' && strings.IndexByte("89ab", s[19]) >= 0
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// clip shortens a quoted value so an error cannot be made arbitrarily
// large by the request it describes.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
