package main

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/pgtest"
)

// TestBenchFill fills each store through `custos bench fill` and reads
// back through the storage contract everything an ingested event leaves:
// its event, its deduplication record, and its subject's profile,
// identifier link and key.
func TestBenchFill(t *testing.T) {
	master := keyring.NewMasterKeyText()
	cases := []struct {
		name        string
		store, keys func(t *testing.T, data string) string
	}{
		{"pebble",
			func(t *testing.T, data string) string { return filepath.Join(data, "store") },
			func(t *testing.T, data string) string { return filepath.Join(data, "keys") }},
		{"postgres",
			func(t *testing.T, _ string) string { return pgtest.NewDatabase(t) },
			func(t *testing.T, _ string) string { return pgtest.NewDatabase(t) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			data := t.TempDir()
			store, keys := tc.store(t, data), tc.keys(t, data)
			getenv := func(k string) string {
				if k == keyring.MasterKeyEnv {
					return master
				}
				return ""
			}
			open := func() *stores {
				t.Helper()
				m, _, err := keyring.LoadMasterKey(getenv, "", "", nil)
				if err != nil {
					t.Fatal(err)
				}
				sts, err := openStores(ctx, store, keys, data, m, pebble.Options{}, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				return sts
			}
			tn := &custos.Tenant{ID: custos.NewTenantID(), Name: "bench", Region: "eu", CreatedAt: time.Now().UTC()}
			sts := open()
			if err := sts.data.CreateTenant(ctx, tn); err != nil {
				t.Fatal(err)
			}
			sts.Close(nil)

			const events, subjects = 2000, 300
			var out, errOut bytes.Buffer
			args := []string{"bench", "fill", "--data", data, "--store", store, "--keys", keys,
				"--events", "2000", "--subjects", "300", "--batch", "250", "--writers", "3", "--value-bytes", "100"}
			if err := run(ctx, args, getenv, nil, &out, &errOut); err != nil {
				t.Fatalf("bench fill: %v\n%s%s", err, out.String(), errOut.String())
			}
			if !bytes.Contains(out.Bytes(), []byte("filled 2000 events")) {
				t.Errorf("bench fill printed %q, want a line saying it filled 2000 events", out.String())
			}

			sts = open()
			defer sts.Close(nil)
			seen := map[custos.SubjectID]int{}
			if err := sts.data.EachSeen(ctx, func(got custos.TenantID, s custos.Seen) error {
				if got == tn.ID {
					seen[s.Subject]++
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			var profiles, stored int
			if err := sts.data.EachProfile(ctx, tn.ID, custos.SubjectID{}, func(p custos.StoredProfile) (bool, error) {
				profiles++
				n := 0
				if err := sts.data.Events(ctx, tn.ID, p.Subject, nil, func(e custos.StoredEvent) (bool, error) {
					if len(e.Value) != 100 {
						t.Errorf("event of %s has a %d-byte value, want 100", p.Subject, len(e.Value))
					}
					n++
					return true, nil
				}); err != nil {
					return false, err
				}
				if n == 0 || n != seen[p.Subject] {
					t.Errorf("subject %s: %d events and %d deduplication records, want as many and some", p.Subject, n, seen[p.Subject])
				}
				stored += n
				if got, err := sts.data.Subject(ctx, tn.ID, fillLinkHash(p.Subject)); err != nil || got != p.Subject {
					t.Errorf("link of %s points at %s (%v), want the subject", p.Subject, got, err)
				}
				if k, err := sts.keys.SubjectKey(ctx, tn.ID, p.Subject); err != nil || len(k) != 61 {
					t.Errorf("key of %s: %d bytes (%v), want 61", p.Subject, len(k), err)
				}
				return true, nil
			}); err != nil {
				t.Fatal(err)
			}
			if stored != events || len(seen) != profiles || profiles == 0 || profiles > subjects {
				t.Errorf("%d events of %d profiled subjects (%d with deduplication records), want %d events over at most %d subjects", stored, profiles, len(seen), events, subjects)
			}
		})
	}
}
