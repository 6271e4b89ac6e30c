package custos

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
)

// TestWithDerived checks that an e-mail address brings its SHA-256 (of the
// trimmed, lowercased form) after the identifiers, and that other
// identifiers bring nothing.
func TestWithDerived(t *testing.T) {
	ids := []Identifier{{Type: UserID, Value: "u1"}, {Type: Email, Value: " Ann@Example.com "}}
	sum := sha256.Sum256([]byte("ann@example.com"))
	want := append(slices.Clone(ids), Identifier{Type: EmailSHA256, Value: hex.EncodeToString(sum[:])})
	if got := WithDerived(ids); !slices.Equal(got, want) {
		t.Errorf("WithDerived(%v) = %v, want %v", ids, got, want)
	}
	device := []Identifier{{Type: DeviceID, Value: "d"}}
	if got := WithDerived(device); !slices.Equal(got, device) {
		t.Errorf("WithDerived(%v) = %v, want it alone", device, got)
	}
}
