package segment

import (
	"testing"

	"github.com/custos-dev/custos"
)

func TestDecodeKinds(t *testing.T) {
	body := []byte(`{"type":"page","userId":"u","name":"Home"}`)
	tests := []struct {
		kind Kind
		want custos.MessageType
		code custos.Code
	}{
		{kind: Kind{}, want: custos.Page},                      // the body says
		{kind: Kind{Type: custos.Screen}, want: custos.Screen}, // the path says
		{kind: Kind{Type: "purchase"}, code: custos.Internal},  // a bug in the caller
	}
	for _, tt := range tests {
		got, err := Decode(body, tt.kind, received, DefaultLimits)
		if tt.code != "" {
			if code := custos.ErrorCode(err); code != tt.code {
				t.Errorf("Decode(%s, %+v) error = %v; want %s", body, tt.kind, err, tt.code)
			}
			continue
		}
		if err != nil || len(got.Messages) != 1 || got.Messages[0].Type != tt.want {
			t.Errorf("Decode(%s, %+v) = %+v, %v; want one %s", body, tt.kind, got, err, tt.want)
		}
	}
}
