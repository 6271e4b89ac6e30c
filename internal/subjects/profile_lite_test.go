package subjects

import (
	stdjson "encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/custos-dev/custos"
)

// TestDecodeProfileLite: the fast reader finds what the full decoder does.
func TestDecodeProfileLite(t *testing.T) {
	rec := profileRecord{IDs: map[string][]string{"user_id": {"u1"}, "email": {"a@b.c", "d@e.f"}}, Created: time.Unix(5, 0)}
	rec.setTraits([]byte(`{"name":"Ann \"Q\"","age":41,"tags":["x",{"y":null}],"addr":{"city":"Lyon"},"gone":null}`), time.Unix(6, 0))
	rec.setGroup("g1", []byte(`{"plan":"pro"}`), time.Unix(7, 0))
	plain, err := json.Marshal(&rec)
	if err != nil {
		t.Fatal(err)
	}
	want := rec.view(custos.SubjectID{})
	got := &custos.Profile{Identifiers: map[string][]string{}, Traits: map[string]stdjson.RawMessage{}}
	if err := decodeProfileLite(plain, got); err != nil {
		t.Fatal(err)
	}
	if len(got.Traits) != len(want.Traits) {
		t.Fatalf("traits %v, want %v", got.Traits, want.Traits)
	}
	for k, v := range want.Traits {
		if string(got.Traits[k]) != string(v) {
			t.Errorf("trait %s = %s, want %s", k, got.Traits[k], v)
		}
	}
	for _, typ := range []string{"user_id", "email"} {
		if fmt.Sprint(got.Identifiers[typ]) != fmt.Sprint(want.Identifiers[typ]) {
			t.Errorf("identifiers %s = %v, want %v", typ, got.Identifiers[typ], want.Identifiers[typ])
		}
	}
	if err := decodeProfileLite([]byte(`[1]`), got); err == nil {
		t.Error("decodeProfileLite of an array = nil, want an error")
	}
}

func BenchmarkDecodeProfileLite(b *testing.B) {
	rec := profileRecord{IDs: map[string][]string{"user_id": {"user-123456"}, "email": {"person123456@example.com"}}, Created: time.Unix(5, 0)}
	rec.setTraits([]byte(`{"email":"person123456@example.com","first_name":"P123456","plan":"pro","MSG-email":true}`), time.Unix(6, 0))
	plain, _ := json.Marshal(&rec)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		p := &custos.Profile{Identifiers: map[string][]string{}, Traits: map[string]stdjson.RawMessage{}}
		if err := decodeProfileLite(plain, p); err != nil {
			b.Fatal(err)
		}
	}
}
