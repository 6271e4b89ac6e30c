package consent

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/custos-dev/custos"
)

// FuzzRecord feeds arbitrary consent bodies (what POST /api/v1/consents
// and the SDKs' consent context carry) through Check and TruncateIP: no
// panic; a record Check accepts is within its bounds; a truncated IP is
// an address or "". Seeds: testdata/fuzz/FuzzRecord.
func FuzzRecord(f *testing.F) {
	st := &custos.Settings{}
	f.Fuzz(func(t *testing.T, body []byte) {
		var r custos.ConsentRecord
		if json.Unmarshal(body, &r) != nil {
			return
		}
		if ip := TruncateIP(r.IP); ip != "" && !utf8.ValidString(ip) {
			t.Fatalf("TruncateIP(%q) = %q", r.IP, ip)
		}
		if err := Check(st, &r); err != nil {
			if custos.ErrorCode(err) != custos.Invalid {
				t.Fatalf("Check error code %q (%v), want invalid", custos.ErrorCode(err), err)
			}
			return
		}
		if len(r.Proof) > MaxProof || len(r.UserAgent) > MaxUserAgent || r.Purpose == "" {
			t.Fatalf("Check accepted a record over its bounds: %+v", r)
		}
		if _, ok := st.Purpose(r.Purpose); !ok {
			t.Fatalf("Check accepted undeclared purpose %q", r.Purpose)
		}
	})
}
