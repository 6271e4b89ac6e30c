package campaign_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/campaign"
)

// TestTokens: a token opens to what it was made for, names no one, and
// cannot be altered, moved to another tenant or made without the key.
func TestTokens(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.tenant(t, ""), e.tenant(t, "")
	s := e.identify(t, a.ID, "u-1", "one@example.com", nil)
	u := campaign.Unsubscribe{Tenant: a.ID, Subject: s, Purpose: "marketing", Channel: custos.ChannelEmail}
	tok, err := campaign.NewToken(e.ring, u)
	if err != nil {
		t.Fatal(err)
	}
	got, err := campaign.ParseToken(e.ring, tok)
	if err != nil || got != u {
		t.Fatalf("ParseToken = %+v, %v; want %+v", got, err, u)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	if strings.Contains(string(raw), "marketing") || strings.Contains(string(raw), string(s[:])) {
		t.Errorf("the token carries its purpose or subject in the clear")
	}
	again, _ := campaign.NewToken(e.ring, u)
	if again == tok {
		t.Errorf("two tokens for the same subject are equal: they would be linkable")
	}
	moved := append(append([]byte{}, b.ID[:]...), raw[16:]...)
	flipped := append([]byte{}, raw...)
	flipped[len(flipped)-5] ^= 1
	for name, bad := range map[string]string{
		"moved to tenant b": base64.RawURLEncoding.EncodeToString(moved),
		"one bit flipped":   base64.RawURLEncoding.EncodeToString(flipped),
		"truncated":         tok[:len(tok)-4],
		"not base64":        "%%%",
		"empty":             "",
	} {
		if _, err := campaign.ParseToken(e.ring, bad); custos.ErrorCode(err) != custos.NotFound {
			t.Errorf("ParseToken(%s) = %v, want NotFound", name, err)
		}
	}
}
