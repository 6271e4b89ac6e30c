package keyring

import (
	"context"
	"fmt"
	"testing"

	"github.com/custos-dev/custos"
)

func TestCacheBound(t *testing.T) {
	for _, size := range []int{1, 7, 50, 200, 5000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := newCache(size)
			total := 0
			for i := range c.shards {
				total += c.shards[i].max
			}
			if total != size {
				t.Fatalf("shard bounds add up to %d, want %d", total, size)
			}
			tk := &tenant{}
			for range 3 * size {
				key := cacheKey{custos.NewTenantID(), custos.NewSubjectID()}
				c.add(key, &SubjectKey{}, tk)
				if n := c.len(); n > size {
					t.Fatalf("cache holds %d keys, bound %d", n, size)
				}
			}
			// Shards fill unevenly, but with 3×size random keys each is full.
			if n := c.len(); n != size {
				t.Errorf("cache holds %d keys after %d adds, want %d", n, 3*size, size)
			}
		})
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newCache(3) // one shard
	tk := &tenant{}
	keys := make([]cacheKey, 4)
	vals := make([]*SubjectKey, 4)
	for i := range keys {
		keys[i] = cacheKey{custos.NewTenantID(), custos.NewSubjectID()}
		vals[i] = &SubjectKey{}
	}
	for i := range 3 {
		c.add(keys[i], vals[i], tk)
	}
	c.get(keys[0]) // 1 is now the least recently used
	c.add(keys[3], vals[3], tk)
	for i, want := range []bool{true, false, true, true} {
		if got := c.get(keys[i]) == vals[i]; got != want {
			t.Errorf("key %d cached = %v, want %v", i, got, want)
		}
	}
}

// TestRingCacheBound seals for many more subjects than the cache holds:
// the cache stays within its bound, and evicted keys load again from the
// store and open what they sealed.
func TestRingCacheBound(t *testing.T) {
	ctx := context.Background()
	const size, subjects = 64, 500
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{CacheSize: size})
	tn := mustTenant(t, r)
	ids := make([]custos.SubjectID, subjects)
	sealed := make([][]byte, subjects)
	for i := range ids {
		ids[i] = custos.NewSubjectID()
		sealed[i] = mustSeal(t, r, tn, ids[i], nil, fmt.Appendf(nil, "subject %d", i))
		if n := r.cache.len(); n > size {
			t.Fatalf("after %d subjects the cache holds %d keys, bound %d", i+1, n, size)
		}
	}
	for i, s := range ids {
		got, err := r.Open(ctx, tn, s, nil, sealed[i])
		if want := fmt.Sprintf("subject %d", i); err != nil || string(got) != want {
			t.Errorf("Open subject %d = %q, %v; want %q", i, got, err, want)
		}
	}
	if n := r.cache.len(); n > size {
		t.Errorf("cache holds %d keys, bound %d", n, size)
	}
}

// TestCacheNeverHoldsMisses checks that failed lookups leave nothing behind.
func TestCacheNeverHoldsMisses(t *testing.T) {
	ctx := context.Background()
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	tn := mustTenant(t, r)
	shredded := custos.NewSubjectID()
	mustSeal(t, r, tn, shredded, nil, []byte("x"))
	if err := r.Shred(ctx, tn, shredded); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r.SubjectKey(ctx, tn, custos.NewSubjectID(), false)
		r.SubjectKey(ctx, tn, shredded, false)
		r.SubjectKey(ctx, tn, shredded, true)
	}
	if n := r.cache.len(); n != 0 {
		t.Errorf("cache holds %d keys after only misses and shreds, want 0", n)
	}
}
