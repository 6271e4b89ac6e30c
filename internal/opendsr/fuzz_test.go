package opendsr

import (
	"errors"
	"testing"
	"time"
)

// FuzzParseRequest feeds arbitrary bodies to ParseRequest (both API
// versions): it must never panic; a refusal is a 400 *Error naming at
// least one problem; an accepted request has an id, a type and at least
// one subject identity. Seeds: testdata/fuzz/FuzzParseRequest.
func FuzzParseRequest(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, v1 bool) {
		r, err := Options{V1: v1}.ParseRequest(body, now)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != 400 || len(e.Errors) == 0 {
				t.Fatalf("ParseRequest error %v, want a 400 *Error naming its problems", err)
			}
			return
		}
		if r.SubjectRequestID == "" || r.SubjectRequestType == "" || len(r.SubjectIdentities) == 0 {
			t.Fatalf("ParseRequest accepted %+v without id, type or identity", r)
		}
	})
}
