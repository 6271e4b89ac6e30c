package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"slices"
	"testing"

	"github.com/custos-dev/custos"
)

// RunKeyStore runs the conformance suite for custos.KeyStore against the
// key stores open returns, each behaviour as a subtest of t. open is
// called at least once per subtest with that subtest's t; it must return
// a new, empty key store and arrange for it to be closed (with t.Cleanup).
func RunKeyStore(t *testing.T, open func(t *testing.T) custos.KeyStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(*testing.T) custos.KeyStore)
	}{
		{"TenantKeysAndMeta", testKeyStoreTenantKeysAndMeta},
		{"SubjectKeyLifecycle", testKeyStoreSubjectKeyLifecycle},
		{"DeleteTenantKey", testKeyStoreDeleteTenantKey},
		{"SubjectKeys", testKeyStoreSubjectKeys},
		{"SubjectKeysManyPages", testKeyStoreSubjectKeysMany},
		{"Copies", testKeyStoreCopies},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// wrapped returns a random stand-in for a wrapped key.
func wrapped() []byte {
	b := make([]byte, 60)
	rand.Read(b)
	return b
}

// putSubjectKey stores a subject key and waits for it to be durable.
func putSubjectKey(t *testing.T, ks custos.KeyStore, ten custos.TenantID, s custos.SubjectID, v []byte) {
	t.Helper()
	wait, err := ks.PutSubjectKey(t.Context(), ten, s, v)
	if err != nil {
		t.Fatalf("PutSubjectKey(%s/%s) = %v, want nil", ten, s, err)
	}
	if err := wait(); err != nil {
		t.Fatalf("PutSubjectKey(%s/%s): wait() = %v, want nil", ten, s, err)
	}
}

// checkSubjectKey checks what SubjectKey answers: want, or wantErr.
func checkSubjectKey(t *testing.T, ks custos.KeyStore, ten custos.TenantID, s custos.SubjectID, want []byte, wantErr error) {
	t.Helper()
	got, err := ks.SubjectKey(t.Context(), ten, s)
	switch {
	case wantErr != nil && !errors.Is(err, wantErr):
		t.Errorf("SubjectKey(%s/%s) = %x, %v; want %v", ten, s, got, err, wantErr)
	case wantErr == nil && (err != nil || !bytes.Equal(got, want)):
		t.Errorf("SubjectKey(%s/%s) = %x, %v; want %x, nil", ten, s, got, err, want)
	}
}

func checkTenantKeys(t *testing.T, ks custos.KeyStore, want map[custos.TenantID][]byte) {
	t.Helper()
	got, err := ks.TenantKeys(t.Context())
	if err != nil {
		t.Fatalf("TenantKeys = %v, want nil", err)
	}
	if len(got) != len(want) {
		t.Errorf("TenantKeys has %d keys, want %d", len(got), len(want))
	}
	for ten, w := range want {
		if !bytes.Equal(got[ten], w) {
			t.Errorf("TenantKeys[%s] = %x, want %x", ten, got[ten], w)
		}
	}
}

// testKeyStoreTenantKeysAndMeta: meta records and tenant keys are stored
// together; a later put replaces the keys and records it names and keeps
// the others.
func testKeyStoreTenantKeysAndMeta(t *testing.T, open func(*testing.T) custos.KeyStore) {
	ks := open(t)
	ctx := t.Context()
	if v, err := ks.Meta(ctx, "check"); !errors.Is(err, custos.ErrNotFound) {
		t.Errorf("Meta(check) of an empty store = %x, %v; want ErrNotFound", v, err)
	}
	checkTenantKeys(t, ks, nil)
	a, b := custos.NewTenantID(), custos.NewTenantID()
	keys := map[custos.TenantID][]byte{a: wrapped(), b: wrapped()}
	check1 := []byte("check one")
	if err := ks.PutTenantKeys(ctx, keys, map[string][]byte{"check": check1, "other": []byte("x")}); err != nil {
		t.Fatalf("PutTenantKeys = %v, want nil", err)
	}
	checkTenantKeys(t, ks, keys)
	if v, err := ks.Meta(ctx, "check"); err != nil || !bytes.Equal(v, check1) {
		t.Errorf("Meta(check) = %q, %v; want %q", v, err, check1)
	}
	// A rotation replaces a key and a record; b and "other" stay.
	keys[a] = wrapped()
	check2 := []byte("check two")
	if err := ks.PutTenantKeys(ctx, map[custos.TenantID][]byte{a: keys[a]}, map[string][]byte{"check": check2}); err != nil {
		t.Fatalf("PutTenantKeys (rotation) = %v, want nil", err)
	}
	checkTenantKeys(t, ks, keys)
	if v, err := ks.Meta(ctx, "check"); err != nil || !bytes.Equal(v, check2) {
		t.Errorf("Meta(check) after a replace = %q, %v; want %q", v, err, check2)
	}
	if v, err := ks.Meta(ctx, "other"); err != nil || string(v) != "x" {
		t.Errorf("Meta(other) after a put naming only check = %q, %v; want \"x\"", v, err)
	}
}

// testKeyStoreSubjectKeyLifecycle: missing, put, replaced, shredded; a
// shredded key is never replaced, and a shred needs no key before it.
func testKeyStoreSubjectKeyLifecycle(t *testing.T, open func(*testing.T) custos.KeyStore) {
	ks := open(t)
	ctx := t.Context()
	ten, s := custos.NewTenantID(), custos.NewSubjectID()
	checkSubjectKey(t, ks, ten, s, nil, custos.ErrNotFound)
	v1, v2 := wrapped(), wrapped()
	putSubjectKey(t, ks, ten, s, v1)
	checkSubjectKey(t, ks, ten, s, v1, nil)
	putSubjectKey(t, ks, ten, s, v2)
	checkSubjectKey(t, ks, ten, s, v2, nil)
	if err := ks.ShredSubjectKey(ctx, ten, s); err != nil {
		t.Fatalf("ShredSubjectKey = %v, want nil", err)
	}
	checkSubjectKey(t, ks, ten, s, nil, custos.ErrShredded)
	if _, err := ks.PutSubjectKey(ctx, ten, s, wrapped()); !errors.Is(err, custos.ErrShredded) {
		t.Errorf("PutSubjectKey after a shred = %v, want ErrShredded (a late write must not bring the subject back)", err)
	}
	checkSubjectKey(t, ks, ten, s, nil, custos.ErrShredded)
	never := custos.NewSubjectID()
	if err := ks.ShredSubjectKey(ctx, ten, never); err != nil {
		t.Fatalf("ShredSubjectKey of a subject without a key = %v, want nil", err)
	}
	checkSubjectKey(t, ks, ten, never, nil, custos.ErrShredded)
	// The same subject id under another tenant is another key.
	other := custos.NewTenantID()
	checkSubjectKey(t, ks, other, s, nil, custos.ErrNotFound)
}

// testKeyStoreDeleteTenantKey deletes one of two tenants with
// neighbouring ids and the same subject ids: its tenant key and subject
// keys are gone, the other's untouched.
func testKeyStoreDeleteTenantKey(t *testing.T, open func(*testing.T) custos.KeyStore) {
	for _, pair := range neighbourPairs() {
		t.Run(pair.name, func(t *testing.T) {
			ks := open(t)
			ctx := t.Context()
			gone, kept := custos.TenantID(pair.a), custos.TenantID(pair.b)
			keys := map[custos.TenantID][]byte{gone: wrapped(), kept: wrapped()}
			if err := ks.PutTenantKeys(ctx, keys, nil); err != nil {
				t.Fatalf("PutTenantKeys = %v, want nil", err)
			}
			s := custos.NewSubjectID()
			vKept := wrapped()
			putSubjectKey(t, ks, gone, s, wrapped())
			putSubjectKey(t, ks, kept, s, vKept)
			if err := ks.DeleteTenantKey(ctx, gone); err != nil {
				t.Fatalf("DeleteTenantKey(%s) = %v, want nil", gone, err)
			}
			checkTenantKeys(t, ks, map[custos.TenantID][]byte{kept: keys[kept]})
			if _, err := ks.SubjectKey(ctx, gone, s); err == nil {
				t.Errorf("SubjectKey(%s/%s) after DeleteTenantKey = nil error, want the key gone", gone, s)
			}
			checkSubjectKey(t, ks, kept, s, vKept, nil)
		})
	}
}

// walkSubjectKeys returns the subjects SubjectKeys gives from from to to,
// stopping after limit, and checks each value against vals.
func walkSubjectKeys(t *testing.T, ks custos.KeyStore, ten custos.TenantID, from, to custos.SubjectID, limit int, vals map[custos.SubjectID][]byte) []custos.SubjectID {
	t.Helper()
	var got []custos.SubjectID
	err := ks.SubjectKeys(t.Context(), ten, from, to, func(s custos.SubjectID, v []byte) (bool, error) {
		if !bytes.Equal(v, vals[s]) {
			t.Errorf("SubjectKeys(%s): value of %s = %x, want %x", ten, s, v, vals[s])
		}
		got = append(got, s)
		return len(got) < limit, nil
	})
	if err != nil {
		t.Fatalf("SubjectKeys(%s, %s..%s) = %v, want nil", ten, from, to, err)
	}
	return got
}

// testKeyStoreSubjectKeys: the walk gives a tenant's live keys between
// the bounds (both included) in subject order, leaves out shredded ones
// and other tenants' (with neighbouring ids), stops when fn says so and
// returns fn's error.
func testKeyStoreSubjectKeys(t *testing.T, open func(*testing.T) custos.KeyStore) {
	for _, pair := range neighbourPairs() {
		t.Run(pair.name, func(t *testing.T) {
			ks := open(t)
			ten, other := custos.TenantID(pair.a), custos.TenantID(pair.b)
			var subs []custos.SubjectID
			vals := map[custos.SubjectID][]byte{}
			for _, id := range [][16]byte{filled(0x00), withLast(filled(0x10), 0xff), filled(0x20), filled(0x30), withLast(filled(0x40), 0x00), filled(0xff)} {
				s := custos.SubjectID(id)
				subs = append(subs, s)
				vals[s] = wrapped()
				putSubjectKey(t, ks, ten, s, vals[s])
				putSubjectKey(t, ks, other, s, wrapped())
			}
			if err := ks.ShredSubjectKey(t.Context(), ten, subs[2]); err != nil {
				t.Fatalf("ShredSubjectKey = %v, want nil", err)
			}
			if got, want := walkSubjectKeys(t, ks, ten, subs[1], subs[4], 100, vals), []custos.SubjectID{subs[1], subs[3], subs[4]}; !slices.Equal(got, want) {
				t.Errorf("SubjectKeys(%s..%s) = %v, want %v (bounds included, the shredded one left out)", subs[1], subs[4], got, want)
			}
			all := []custos.SubjectID{subs[0], subs[1], subs[3], subs[4], subs[5]}
			if got := walkSubjectKeys(t, ks, ten, subs[0], subs[5], 100, vals); !slices.Equal(got, all) {
				t.Errorf("SubjectKeys(all) = %v, want %v", got, all)
			}
			if got := walkSubjectKeys(t, ks, ten, subs[0], subs[5], 2, vals); !slices.Equal(got, all[:2]) {
				t.Errorf("SubjectKeys stopped after 2 = %v, want %v", got, all[:2])
			}
			if got := walkSubjectKeys(t, ks, ten, subs[3], subs[3], 100, vals); !slices.Equal(got, subs[3:4]) {
				t.Errorf("SubjectKeys(%s..%s) = %v, want %v", subs[3], subs[3], got, subs[3:4])
			}
			stop := errors.New("stop")
			calls := 0
			err := ks.SubjectKeys(t.Context(), ten, subs[0], subs[5], func(custos.SubjectID, []byte) (bool, error) {
				calls++
				return true, stop
			})
			if !errors.Is(err, stop) || calls != 1 {
				t.Errorf("SubjectKeys with fn failing = %v after %d calls, want the error after 1", err, calls)
			}
		})
	}
}

// testKeyStoreSubjectKeysMany walks more keys than a store is likely to
// read in one page, in order and without repeats.
func testKeyStoreSubjectKeysMany(t *testing.T, open func(*testing.T) custos.KeyStore) {
	ks := open(t)
	ten := custos.NewTenantID()
	const n = 1100
	vals := map[custos.SubjectID][]byte{}
	var want []custos.SubjectID
	for i := range n {
		var s custos.SubjectID
		s[0], s[1] = byte(i>>8), byte(i)
		s[15] = 7
		vals[s] = wrapped()
		want = append(want, s)
		putSubjectKey(t, ks, ten, s, vals[s])
	}
	got := walkSubjectKeys(t, ks, ten, custos.SubjectID(filled(0x00)), custos.SubjectID(filled(0xff)), n+1, vals)
	if !slices.Equal(got, want) {
		sorted := slices.IsSortedFunc(got, func(a, b custos.SubjectID) int { return bytes.Compare(a[:], b[:]) })
		t.Errorf("SubjectKeys over %d keys gave %d keys (sorted: %v), want all %d in subject order", n, len(got), sorted, n)
	}
}

// testKeyStoreCopies: the store keeps no reference to a caller's slice,
// and hands out slices the caller may change.
func testKeyStoreCopies(t *testing.T, open func(*testing.T) custos.KeyStore) {
	ks := open(t)
	ctx := t.Context()
	ten, s := custos.NewTenantID(), custos.NewSubjectID()
	v := wrapped()
	orig := bytes.Clone(v)
	putSubjectKey(t, ks, ten, s, v)
	scribble(v)
	checkSubjectKey(t, ks, ten, s, orig, nil)
	got, err := ks.SubjectKey(ctx, ten, s)
	if err != nil {
		t.Fatal(err)
	}
	scribble(got)
	checkSubjectKey(t, ks, ten, s, orig, nil)

	tk := wrapped()
	tkOrig := bytes.Clone(tk)
	if err := ks.PutTenantKeys(ctx, map[custos.TenantID][]byte{ten: tk}, nil); err != nil {
		t.Fatal(err)
	}
	scribble(tk)
	keys, err := ks.TenantKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	scribble(keys[ten])
	checkTenantKeys(t, ks, map[custos.TenantID][]byte{ten: tkOrig})
}
