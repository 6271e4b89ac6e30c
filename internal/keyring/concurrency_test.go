package keyring

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/custos-dev/custos"
)

// TestConcurrentSealOpenShred runs sealers, openers and shredders over a
// shared set of subjects with a small cache (so keys are evicted and
// reloaded). Whatever the interleaving: a record opens to what was sealed
// or answers ErrShredded, never anything else; once Shred has returned,
// nothing of that subject opens or seals again; and no subject ever gets
// two keys (a record sealed under a replaced key would fail to open).
func TestConcurrentSealOpenShred(t *testing.T) {
	ctx := context.Background()
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{CacheSize: 16})
	tn := mustTenant(t, r)
	const nSubjects, workers, rounds = 40, 8, 150
	subjects := make([]custos.SubjectID, nSubjects)
	for i := range subjects {
		subjects[i] = custos.NewSubjectID()
	}
	var shredded [nSubjects]atomic.Bool

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				n := (w*7 + i*13) % nSubjects
				s := subjects[n]
				rk := fmt.Appendf(nil, "w%d/r%d", w, i)
				pt := fmt.Appendf(nil, "worker %d round %d", w, i)
				wasShredded := shredded[n].Load()
				ct, err := r.Seal(ctx, tn, s, rk, pt)
				if err == custos.ErrShredded {
					continue
				}
				if err != nil {
					t.Errorf("Seal: %v", err)
					return
				}
				if wasShredded {
					t.Errorf("Seal succeeded for subject %d after its Shred returned", n)
				}
				got, err := r.Open(ctx, tn, s, rk, ct)
				switch {
				case err == custos.ErrShredded:
				case err != nil:
					t.Errorf("Open: %v", err)
				case string(got) != string(pt):
					t.Errorf("Open = %q, want %q", got, pt)
				}
				if w == 0 && i%10 == 9 {
					victim := (i / 10) % nSubjects
					if err := r.Shred(ctx, tn, subjects[victim]); err != nil {
						t.Errorf("Shred: %v", err)
					}
					shredded[victim].Store(true)
				}
			}
		})
	}
	wg.Wait()
	if n := r.cache.len(); n > 16 {
		t.Errorf("cache holds %d keys, bound 16", n)
	}
	for n, s := range subjects {
		_, _, err := r.SubjectKey(ctx, tn, s, false)
		if shredded[n].Load() && err != custos.ErrShredded {
			t.Errorf("shredded subject %d: err = %v, want ErrShredded", n, err)
		}
	}
}

// TestConcurrentCreate has many callers race to create one subject's key:
// all get the same key, and all of them wait for its durability.
func TestConcurrentCreate(t *testing.T) {
	ctx := context.Background()
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	tn := mustTenant(t, r)
	for range 20 {
		s := custos.NewSubjectID()
		keys := make([]*SubjectKey, 16)
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() {
				k, wait, err := r.SubjectKey(ctx, tn, s, true)
				if err != nil {
					t.Error(err)
					return
				}
				if err := wait(); err != nil {
					t.Error(err)
				}
				keys[i] = k
			})
		}
		wg.Wait()
		for i, k := range keys {
			if k != keys[0] {
				t.Fatalf("caller %d got key %p, caller 0 got %p", i, k, keys[0])
			}
		}
	}
}

// TestConcurrentHash hashes from many goroutines for several tenants:
// pooled hashers must never mix tenants' keys or state.
func TestConcurrentHash(t *testing.T) {
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	tenants := []custos.TenantID{mustTenant(t, r), mustTenant(t, r), mustTenant(t, r)}
	want := map[custos.TenantID]custos.IdentifierHash{}
	id := custos.Identifier{Type: custos.Email, Value: "ada@example.com"}
	for _, tn := range tenants {
		want[tn], _ = r.HashIdentifier(tn, id)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				tn := tenants[(w+i)%len(tenants)]
				if i%3 == 0 { // a long value in between, to stress the scratch buffers
					r.HashIdentifier(tn, custos.Identifier{Type: custos.UserID, Value: string(make([]byte, 200+i))})
				}
				got, err := r.HashIdentifier(tn, id)
				if err != nil || got != want[tn] {
					t.Errorf("HashIdentifier under load = %x, %v; want %x", got, err, want[tn])
					return
				}
			}
		})
	}
	wg.Wait()
}
