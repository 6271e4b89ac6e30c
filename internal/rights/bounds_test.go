package rights_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/rights"
)

// TestCreateBounds: the sizes a caller chooses in a request are bounded,
// each refusal naming the field and the limit, before anything is
// stored.
func TestCreateBounds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	user := custos.Identifier{Type: custos.UserID, Value: "u"}
	traits := func(n, valueLen int) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		for i := range n {
			m[fmt.Sprintf("t%d", i)] = json.RawMessage(`"` + strings.Repeat("x", valueLen-2) + `"`)
		}
		return m
	}
	for _, c := range []struct {
		name string
		in   rights.Input
		want string
	}{
		{"identity of 1025 bytes", rights.Input{Type: custos.Suppress, Identity: custos.Identifier{Type: custos.UserID, Value: strings.Repeat("u", 1025)}},
			"identity.value is 1025 bytes; the limit is 1024"},
		{"callback_url of 2049 bytes", rights.Input{Type: custos.Access, Identity: user, CallbackURL: "https://a.example/" + strings.Repeat("p", 2049-18)},
			"callback_url is 2049 bytes; the limit is 2048"},
		{"101 traits", rights.Input{Type: custos.Rectify, Identity: user, Traits: traits(101, 4)},
			"traits holds 101 traits; the limit is 100"},
		{"trait value of 8193 bytes", rights.Input{Type: custos.Rectify, Identity: user, Traits: traits(1, 8193)},
			`traits["t0"] is 8193 bytes of JSON; the limit is 8192`},
		{"trait name of 257 bytes", rights.Input{Type: custos.Rectify, Identity: user, Traits: map[string]json.RawMessage{strings.Repeat("n", 257): json.RawMessage(`1`)}},
			"traits has a name of 257 bytes; the limit is 256"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.eng.Create(ctx, e.tenant, c.in)
			if custos.ErrorCode(err) != custos.Invalid || custos.ErrorMessage(err) != c.want {
				t.Errorf("Create(%s) = %v, want invalid: %s", c.name, err, c.want)
			}
		})
	}
	if list, err := e.eng.List(ctx, e.tenant, rights.Filter{}); err != nil || len(list) != 0 {
		t.Errorf("after refusals: %d requests stored (%v), want none", len(list), err)
	}
	// At the bounds, accepted.
	r, err := e.eng.Create(ctx, e.tenant, rights.Input{Type: custos.Suppress, Identity: custos.Identifier{Type: custos.UserID, Value: strings.Repeat("u", 1024)}})
	if err != nil || r.Status != custos.Completed {
		t.Errorf("suppress with an identity of 1024 bytes: %+v, %v; want completed", r, err)
	}
}
