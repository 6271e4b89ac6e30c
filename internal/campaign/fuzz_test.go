package campaign

import (
	"encoding/json"
	"testing"

	"github.com/custos-dev/custos"
)

// FuzzDefinition feeds arbitrary campaign definitions (the body of POST
// /api/v1/campaigns) through what Create checks before it stores
// anything: the audience and the templates. It must never panic, and an
// accepted audience stays within the bounds. Seeds:
// testdata/fuzz/FuzzDefinition.
func FuzzDefinition(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		var in Input
		if json.Unmarshal(body, &in) != nil {
			return
		}
		if err := validateAudience(&in.Audience); err != nil {
			if custos.ErrorCode(err) != custos.Invalid {
				t.Fatalf("validateAudience error code %q (%v), want invalid", custos.ErrorCode(err), err)
			}
			return
		}
		if len(in.Audience.Traits) > maxTraitConditions || len(in.Audience.Events) > maxEventConditions {
			t.Fatalf("audience over the bounds accepted: %d traits, %d events", len(in.Audience.Traits), len(in.Audience.Events))
		}
		for _, ch := range sendChannels {
			if _, err := parseTemplates(ch, in.Message); err != nil && custos.ErrorCode(err) != custos.Invalid {
				t.Fatalf("parseTemplates(%s) error code %q (%v), want invalid", ch, custos.ErrorCode(err), err)
			}
		}
	})
}
