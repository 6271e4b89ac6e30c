package keyring

import (
	"testing"

	"github.com/custos-dev/custos"
)

func TestHashIdentifier(t *testing.T) {
	dir := t.TempDir()
	master := testMaster(t)
	r, ks := openRing(t, dir, master, Options{})
	t1, t2 := mustTenant(t, r), mustTenant(t, r)
	hash := func(r *Ring, tn custos.TenantID, typ custos.IdentifierType, v string) custos.IdentifierHash {
		t.Helper()
		h, err := r.HashIdentifier(tn, custos.Identifier{Type: typ, Value: v})
		if err != nil {
			t.Fatalf("HashIdentifier(%s, %s %q): %v", tn, typ, v, err)
		}
		return h
	}

	base := hash(r, t1, custos.UserID, "user-42")
	if base == (custos.IdentifierHash{}) {
		t.Fatal("hash is zero")
	}
	if hash(r, t1, custos.UserID, "user-42") != base {
		t.Error("hash is not deterministic")
	}
	differs := []struct {
		name string
		tn   custos.TenantID
		typ  custos.IdentifierType
		v    string
	}{
		{"other tenant", t2, custos.UserID, "user-42"},
		{"anonymous id", t1, custos.AnonymousID, "user-42"},
		{"device id", t1, custos.DeviceID, "user-42"},
		{"email type", t1, custos.Email, "user-42"},
		{"other value", t1, custos.UserID, "user-43"},
		{"case differs (user ids are exact)", t1, custos.UserID, "User-42"},
	}
	for _, tt := range differs {
		if hash(r, tt.tn, tt.typ, tt.v) == base {
			t.Errorf("%s: hash equals the base hash", tt.name)
		}
	}

	// E-mail addresses are normalised by HashIdentifier itself.
	email := hash(r, t1, custos.Email, "ada@example.com")
	for _, v := range []string{"Ada@Example.COM", "  ada@example.com\n", "\tADA@EXAMPLE.COM "} {
		if hash(r, t1, custos.Email, v) != email {
			t.Errorf("email %q hashes differently from ada@example.com", v)
		}
	}
	// Other types are not.
	if hash(r, t1, custos.UserID, " user-42") == base {
		t.Error("user id with a leading space hashes like the trimmed one")
	}

	// Stable across a reopen: the index keys in the data store stay valid.
	ks.Close()
	r2, _ := openRing(t, dir, master, Options{})
	if hash(r2, t1, custos.UserID, "user-42") != base {
		t.Error("hash changed across reopen")
	}
	if hash(r2, t1, custos.Email, "ADA@example.com") != email {
		t.Error("email hash changed across reopen")
	}
}

func TestHashIdentifierInvalid(t *testing.T) {
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	tn := mustTenant(t, r)
	for _, id := range []custos.Identifier{
		{Type: 0, Value: "x"},
		{Type: 99, Value: "x"},
		{Type: custos.UserID, Value: ""},
		{Type: custos.Email, Value: "   "},
	} {
		if _, err := r.HashIdentifier(tn, id); custos.ErrorCode(err) != custos.Invalid {
			t.Errorf("HashIdentifier(%+v): err = %v, want code %s", id, err, custos.Invalid)
		}
	}
}

func TestHashDomains(t *testing.T) {
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	t1, t2 := mustTenant(t, r), mustTenant(t, r)
	mid, err := r.HashMessageID(t1, "msg-1")
	if err != nil {
		t.Fatal(err)
	}
	full, _ := r.HashValue(t1, domainMessageID, []byte("msg-1"))
	if [16]byte(full[:16]) != [16]byte(mid) {
		t.Error("HashMessageID is not the first 16 bytes of HashValue(message-id)")
	}
	if mid2, _ := r.HashMessageID(t2, "msg-1"); mid2 == mid {
		t.Error("message hash equal across tenants")
	}
	audit, _ := r.HashValue(t1, "audit", []byte("msg-1"))
	if audit == full {
		t.Error("same value hashes equal in two domains")
	}
	// Domain and value boundaries do not shift: ("ab","c") != ("a","bc").
	ab, _ := r.HashValue(t1, "ab", []byte("c"))
	a, _ := r.HashValue(t1, "a", []byte("bc"))
	if ab == a {
		t.Error("domain/value boundary is ambiguous")
	}
	// An identifier never collides with a domain hash of the same bytes.
	id, _ := r.HashIdentifier(t1, custos.Identifier{Type: custos.UserID, Value: "msg-1"})
	if [32]byte(id) == full {
		t.Error("identifier hash equals a domain hash")
	}
	for _, d := range []string{"", string(make([]byte, 256))} {
		if _, err := r.HashValue(t1, d, nil); custos.ErrorCode(err) != custos.Invalid {
			t.Errorf("HashValue with a %d-byte domain: err = %v, want code %s", len(d), err, custos.Invalid)
		}
	}
}

// TestOperatorHash: under custos.OperatorChain, HashValue keys with the
// master key, so two nodes (two rings on two key stores) with one master
// key agree, another master key disagrees, and no tenant's hash equals it.
func TestOperatorHash(t *testing.T) {
	master := testMaster(t)
	a, _ := openRing(t, t.TempDir(), master, Options{})
	b, _ := openRing(t, t.TempDir(), master, Options{})
	other, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	hash := func(r *Ring, tn custos.TenantID) [32]byte {
		t.Helper()
		h, err := r.HashValue(tn, "address", []byte("203.0.113.7"))
		if err != nil {
			t.Fatalf("HashValue(%s): %v", tn, err)
		}
		return h
	}
	h := hash(a, custos.OperatorChain)
	if hash(b, custos.OperatorChain) != h {
		t.Error("two rings with one master key hash an operator value differently")
	}
	if hash(other, custos.OperatorChain) == h {
		t.Error("rings with different master keys hash an operator value alike")
	}
	if hash(a, mustTenant(t, a)) == h {
		t.Error("a tenant's hash equals the operator's")
	}
}
