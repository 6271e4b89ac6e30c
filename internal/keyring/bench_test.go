package keyring

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/custos-dev/custos"
)

func benchKey(b *testing.B) (*Ring, custos.TenantID, *SubjectKey) {
	b.Helper()
	r, _ := openRing(b, b.TempDir(), testMaster(b), Options{})
	tn := mustTenant(b, r)
	k, wait, err := r.SubjectKey(context.Background(), tn, custos.NewSubjectID(), true)
	if err != nil {
		b.Fatal(err)
	}
	if err := wait(); err != nil {
		b.Fatal(err)
	}
	return r, tn, k
}

// BenchmarkSeal512 seals a 512-byte record with a key in hand, into a
// reused buffer, as the ingest path does.
func BenchmarkSeal512(b *testing.B) {
	_, _, k := benchKey(b)
	pt := make([]byte, 512)
	rk := []byte("e/2024-01-01T00:00:00Z/0123456789abcdef")
	dst := make([]byte, 0, 1024)
	b.SetBytes(512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = k.Seal(dst[:0], rk, pt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen512 opens a 512-byte record with a cached key.
func BenchmarkOpen512(b *testing.B) {
	_, _, k := benchKey(b)
	rk := []byte("e/2024-01-01T00:00:00Z/0123456789abcdef")
	ct, _ := k.Seal(nil, rk, make([]byte, 512))
	dst := make([]byte, 0, 1024)
	b.SetBytes(512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = k.Open(dst[:0], rk, ct); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRingSealOpen512 is the convenient path: lookup, seal, lookup,
// open, with allocated results.
func BenchmarkRingSealOpen512(b *testing.B) {
	r, tn, k := benchKey(b)
	ctx := context.Background()
	pt := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		ct, err := r.Seal(ctx, tn, k.Subject(), []byte("p"), pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Open(ctx, tn, k.Subject(), []byte("p"), ct); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashIdentifier(b *testing.B) {
	r, tn, _ := benchKey(b)
	id := custos.Identifier{Type: custos.Email, Value: "ada.lovelace@example.com"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.HashIdentifier(tn, id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashIdentifierParallel(b *testing.B) {
	r, tn, _ := benchKey(b)
	id := custos.Identifier{Type: custos.Email, Value: "ada.lovelace@example.com"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.HashIdentifier(tn, id)
		}
	})
}

// BenchmarkHMACNewPerCall is the naive way HashIdentifier avoids, for
// comparison.
func BenchmarkHMACNewPerCall(b *testing.B) {
	key := testMaster(b)
	v := []byte("\x02ada.lovelace@example.com")
	b.ReportAllocs()
	for b.Loop() {
		h := hmac.New(sha256.New, key)
		h.Write(v)
		h.Sum(nil)
	}
}

func BenchmarkHashMessageID(b *testing.B) {
	r, tn, _ := benchKey(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.HashMessageID(tn, "0b5a3c2e-6f2d-4c4b-9a8e-2f9c1d7e3a10"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSubjectKeyCached(b *testing.B) {
	r, tn, k := benchKey(b)
	ctx := context.Background()
	s := k.Subject()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.SubjectKey(ctx, tn, s, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSubjectKeyCachedParallel(b *testing.B) {
	r, tn, _ := benchKey(b)
	ctx := context.Background()
	subjects := make([]custos.SubjectID, 1024)
	for i := range subjects {
		subjects[i] = custos.NewSubjectID()
		if _, err := r.Seal(ctx, tn, subjects[i], nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.SubjectKey(ctx, tn, subjects[i%len(subjects)], false)
			i++
		}
	})
}

// BenchmarkSubjectKeyLoad measures a cache miss: read from the key store,
// unwrap, build the AEAD.
func BenchmarkSubjectKeyLoad(b *testing.B) {
	r, tn, k := benchKey(b)
	ctx := context.Background()
	key := cacheKey{tn, k.Subject()}
	b.ReportAllocs()
	for b.Loop() {
		r.cache.remove(key, nil)
		if _, _, err := r.SubjectKey(ctx, tn, k.Subject(), false); err != nil {
			b.Fatal(err)
		}
	}
}
