package opendsr

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const validBody = `{
  "regulation": "gdpr",
  "subject_request_id": "a7551968-d5d6-44b2-9831-815ac9017798",
  "subject_request_type": "erasure",
  "submitted_time": "2026-03-01T11:00:00Z",
  "subject_identities": [
    {"identity_type": "email", "identity_value": "JohnDoe@Example.com", "identity_format": "raw"},
    {"identity_type": "email", "identity_value": "` + sha64 + `", "identity_format": "sha256"},
    {"identity_type": "ios_advertising_id", "identity_value": "6d92078a-8246-4ba4-ae5b-76104861e7dc", "identity_format": "raw"}
  ],
  "api_version": "2.0",
  "status_callback_urls": ["https://controller.example/opendsr_callbacks"],
  "extensions": {"custos.example": {"property_id": "123456"}}
}`

const sha64 = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"

// edit returns validBody with field set to value (a JSON literal), or
// removed when value is empty.
func edit(t *testing.T, field, value string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(validBody), &m); err != nil {
		t.Fatal(err)
	}
	if value == "" {
		delete(m, field)
	} else {
		m[field] = json.RawMessage(value)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRequestValid(t *testing.T) {
	r, err := ParseRequest([]byte(validBody), now)
	if err != nil {
		t.Fatalf("ParseRequest(valid) = %v", err)
	}
	if got, want := r.SubmittedTime, time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("SubmittedTime = %v, want %v", got, want)
	}
	if got, want := string(r.Type()), "erasure"; got != want {
		t.Errorf("Type() = %q, want %q", got, want)
	}
	if got, want := string(r.Extensions["custos.example"]), `{"property_id": "123456"}`; got != want {
		t.Errorf("extension = %s, want %s", got, want)
	}
	// Encoding the request and parsing it again gives the same request.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseRequest(b, now)
	if err != nil {
		t.Fatalf("ParseRequest(%s) = %v", b, err)
	}
	// RawMessage keeps the whitespace of the original; compare decoded.
	r.Extensions, again.Extensions = nil, nil
	if !reflect.DeepEqual(again, r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", again, r)
	}
}

func TestParseRequestAccepts(t *testing.T) {
	for _, tc := range []struct{ name, field, value string }{
		{"v1 api_version", "api_version", `"1.0"`},
		{"no api_version", "api_version", ""},
		{"no callbacks", "status_callback_urls", ""},
		{"offset time", "submitted_time", `"2026-03-01T13:00:00+02:00"`},
		{"fractional time", "submitted_time", `"2026-03-01T11:59:59.123Z"`},
		{"within skew", "submitted_time", `"2026-03-01T12:04:00Z"`},
		{"access", "subject_request_type", `"access"`},
		{"portability", "subject_request_type", `"portability"`},
		{"every device type", "subject_identities", `[
			{"identity_type":"controller_customer_id","identity_value":"u1","identity_format":"raw"},
			{"identity_type":"android_advertising_id","identity_value":"a","identity_format":"raw"},
			{"identity_type":"ios_vendor_id","identity_value":"b","identity_format":"raw"},
			{"identity_type":"android_id","identity_value":"c","identity_format":"raw"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := edit(t, tc.field, tc.value)
			if _, err := ParseRequest(body, now); err != nil {
				t.Errorf("ParseRequest(%s) = %v, want nil", body, err)
			}
		})
	}
}

func TestParseRequestInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, field, value string
		want               string // in the message of the only detail
		reason             string
	}{
		{"no regulation", "regulation", "", "regulation is required", ReasonRequired},
		{"ccpa", "regulation", `"ccpa"`, `regulation "ccpa" is not supported`, ReasonUnsupported},
		{"no id", "subject_request_id", "", "subject_request_id is required", ReasonRequired},
		{"uppercase id", "subject_request_id", `"A7551968-D5D6-44B2-9831-815AC9017798"`, "not a lowercase UUID v4", ReasonInvalid},
		{"v1 uuid", "subject_request_id", `"a7551968-d5d6-14b2-9831-815ac9017798"`, "not a lowercase UUID v4", ReasonInvalid},
		{"bad variant", "subject_request_id", `"a7551968-d5d6-44b2-c831-815ac9017798"`, "not a lowercase UUID v4", ReasonInvalid},
		{"no hyphens", "subject_request_id", `"a7551968d5d644b29831815ac9017798"`, "not a lowercase UUID v4", ReasonInvalid},
		{"no type", "subject_request_type", "", "subject_request_type is required", ReasonRequired},
		{"rectification", "subject_request_type", `"rectification"`, `subject_request_type "rectification" is not supported`, ReasonUnsupported},
		{"no time", "submitted_time", "", "submitted_time is required", ReasonRequired},
		{"not rfc 3339", "submitted_time", `"2026-03-01 11:00:00"`, "is not an RFC 3339 time", ReasonInvalid},
		{"no zone", "submitted_time", `"2026-03-01T11:00:00"`, "is not an RFC 3339 time", ReasonInvalid},
		{"future", "submitted_time", `"2026-03-01T12:06:00Z"`, "is in the future", ReasonInvalid},
		{"no identities", "subject_identities", "", "at least one identity", ReasonRequired},
		{"empty identities", "subject_identities", `[]`, "at least one identity", ReasonRequired},
		{"no identity type", "subject_identities", `[{"identity_value":"x","identity_format":"raw"}]`,
			"subject_identities[0].identity_type is required", ReasonRequired},
		{"roku", "subject_identities", `[{"identity_type":"roku_advertising_id","identity_value":"x","identity_format":"raw"}]`,
			`subject_identities[0].identity_type "roku_advertising_id" is not supported`, ReasonUnsupported},
		{"no format", "subject_identities", `[{"identity_type":"email","identity_value":"a@b.c"}]`,
			"subject_identities[0].identity_format is required", ReasonRequired},
		{"md5", "subject_identities", `[{"identity_type":"email","identity_value":"a@b.c","identity_format":"md5"}]`,
			`subject_identities[0].identity_format "md5" is not supported`, ReasonUnsupported},
		{"no value", "subject_identities", `[{"identity_type":"email","identity_value":" ","identity_format":"raw"}]`,
			"subject_identities[0].identity_value is required", ReasonRequired},
		{"long value", "subject_identities", `[{"identity_type":"controller_customer_id","identity_value":"` + strings.Repeat("x", 1025) + `","identity_format":"raw"}]`,
			"subject_identities[0].identity_value is longer than", ReasonInvalid},
		{"short sha256", "subject_identities", `[{"identity_type":"email","identity_value":"abc","identity_format":"sha256"}]`,
			"subject_identities[0].identity_value is not 64 lowercase hex", ReasonInvalid},
		{"uppercase sha256", "subject_identities", `[{"identity_type":"email","identity_value":"` + strings.ToUpper(sha64) + `","identity_format":"sha256"}]`,
			"subject_identities[0].identity_value is not 64 lowercase hex", ReasonInvalid},
		{"not an email", "subject_identities", `[{"identity_type":"email","identity_value":"johndoe","identity_format":"raw"}]`,
			"subject_identities[0].identity_value is not an e-mail address", ReasonInvalid},
		{"api 3.0", "api_version", `"3.0"`, `api_version "3.0" is not supported`, ReasonUnsupported},
		{"http callback", "status_callback_urls", `["http://controller.example/cb"]`, "status_callback_urls[0] must use https", ReasonUnsupported},
		{"ftp callback", "status_callback_urls", `["ftp://controller.example/cb"]`, "status_callback_urls[0] must use https", ReasonUnsupported},
		{"relative callback", "status_callback_urls", `["https://ok.example/cb", "/cb"]`, "status_callback_urls[1] is not an absolute URL", ReasonInvalid},
		{"hostless callback", "status_callback_urls", `["https:///cb"]`, "status_callback_urls[0] is not an absolute URL", ReasonInvalid},
		{"wrong JSON type", "subject_identities", `"email"`, "subject_identities: wrong JSON type (got string)", ReasonMalformed},
		{"21 identities", "subject_identities", "[" + strings.Repeat(`{"identity_type":"email","identity_value":"a@b.c","identity_format":"raw"},`, 20) +
			`{"identity_type":"email","identity_value":"a@b.c","identity_format":"raw"}]`, "subject_identities holds 21 identities; the limit is 20", ReasonInvalid},
		{"6 callbacks", "status_callback_urls", `["https://a.example/1","https://a.example/2","https://a.example/3","https://a.example/4","https://a.example/5","https://a.example/6"]`,
			"status_callback_urls holds 6 URLs; the limit is 5", ReasonInvalid},
		{"long callback", "status_callback_urls", `["https://a.example/` + strings.Repeat("p", 2100) + `"]`, "status_callback_urls[0] is 2118 bytes; the limit is 2048", ReasonInvalid},
		{"internal callback", "status_callback_urls", `["https://10.0.0.1/cb"]`, "status_callback_urls[0]: refused", ReasonInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := edit(t, tc.field, tc.value)
			e := mustInvalid(t, body, Options{CallbackHost: func(h string) error {
				if h == "10.0.0.1" {
					return errors.New("refused")
				}
				return nil
			}})
			if len(e.Errors) != 1 {
				t.Fatalf("ParseRequest(%s): %d details %+v, want 1", body, len(e.Errors), e.Errors)
			}
			d := e.Errors[0]
			if !strings.Contains(d.Message, tc.want) || d.Reason != tc.reason || d.Domain != DomainValidation {
				t.Errorf("ParseRequest(%s) detail = %+v, want reason %q, message containing %q", body, d, tc.reason, tc.want)
			}
			if e.Message != d.Message {
				t.Errorf("message = %q, want the only detail's %q", e.Message, d.Message)
			}
		})
	}
}

// mustInvalid parses body, which must fail, and returns the *Error.
func mustInvalid(t *testing.T, body []byte, o Options) *Error {
	t.Helper()
	r, err := o.ParseRequest(body, now)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("ParseRequest(%s) = %+v, %v; want an *Error", body, r, err)
	}
	if e.Code != http.StatusBadRequest {
		t.Errorf("code = %d, want 400", e.Code)
	}
	return e
}

func TestParseRequestNamesEveryProblem(t *testing.T) {
	body := []byte(`{"regulation":"ccpa","subject_request_id":"nope","subject_request_type":"erasure",
		"subject_identities":[{"identity_type":"email","identity_value":"x@y.z","identity_format":"raw"},
		{"identity_type":"fax","identity_value":"` + "secret-value" + `","identity_format":"sha1"}],
		"status_callback_urls":["http://c.example/cb"]}`)
	e := mustInvalid(t, body, Options{})
	want := []string{
		`regulation "ccpa" is not supported`,
		`subject_request_id "nope" is not a lowercase UUID v4`,
		"submitted_time is required",
		`subject_identities[1].identity_type "fax" is not supported`,
		`subject_identities[1].identity_format "sha1" is not supported`,
		"status_callback_urls[0] must use https",
	}
	if len(e.Errors) != len(want) {
		t.Fatalf("got %d details %+v, want %d", len(e.Errors), e.Errors, len(want))
	}
	for i, w := range want {
		if !strings.Contains(e.Errors[i].Message, w) {
			t.Errorf("detail %d = %q, want it to contain %q", i, e.Errors[i].Message, w)
		}
		if !strings.Contains(e.Error(), w) {
			t.Errorf("Error() = %q, want it to contain %q", e.Error(), w)
		}
	}
	if got, want := e.Message, "6 problems in the request"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}

	// The rendered body has the specification's shape and no identity value.
	b, err := json.Marshal(e.Response())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "secret-value") || strings.Contains(string(b), "x@y.z") {
		t.Errorf("error body %s quotes an identity value", b)
	}
	var shape struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Errors  []struct {
				Domain, Reason, Message string
			} `json:"errors"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &shape); err != nil {
		t.Fatal(err)
	}
	if shape.Error.Code != 400 || len(shape.Error.Errors) != len(want) || shape.Error.Errors[0].Domain != "Validation" {
		t.Errorf("error body %s does not have the specification's shape", b)
	}
}

func TestParseRequestMalformed(t *testing.T) {
	for _, body := range []string{``, `not json`, `[1,2]`, `{"regulation":"gdpr"} trailing`, `{"regulation":`} {
		t.Run(body, func(t *testing.T) {
			e := mustInvalid(t, []byte(body), Options{})
			if len(e.Errors) != 1 || e.Errors[0].Reason != ReasonMalformed {
				t.Errorf("ParseRequest(%q) details = %+v, want one %q", body, e.Errors, ReasonMalformed)
			}
		})
	}
}

func TestParseRequestOptions(t *testing.T) {
	insecure := edit(t, "status_callback_urls", `["http://127.0.0.1:8080/cb"]`)
	if _, err := (Options{AllowInsecureCallbacks: true}).ParseRequest(insecure, now); err != nil {
		t.Errorf("with AllowInsecureCallbacks, ParseRequest(%s) = %v, want nil", insecure, err)
	}
	future := edit(t, "submitted_time", `"2026-03-01T12:30:00Z"`)
	if _, err := (Options{MaxClockSkew: time.Hour}).ParseRequest(future, now); err != nil {
		t.Errorf("with an hour's skew, ParseRequest(%s) = %v, want nil", future, err)
	}
	mustInvalid(t, future, Options{})
}

func TestNewError(t *testing.T) {
	e := NewError(http.StatusNotFound, "no such request")
	b, err := json.Marshal(e.Response())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"error":{"code":404,"message":"no such request"}}`; got != want {
		t.Errorf("NewError body = %s, want %s", got, want)
	}
	if got, want := e.Error(), "opendsr 404: no such request"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
