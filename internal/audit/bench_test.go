package audit_test

import (
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// BenchmarkRecord measures one durable append to one chain: a head read,
// a hash, and a synced write.
func BenchmarkRecord(b *testing.B) {
	st, _ := openStore(b, b.TempDir())
	l := audit.New(st, newClock().Now)
	tn := custos.NewTenantID()
	e := entry(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Record(b.Context(), tn, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHash measures the hash of one entry, the cost Verify pays per entry.
func BenchmarkHash(b *testing.B) {
	e := custos.AuditEntry{Seq: 1, Actor: "key:1", Action: "subject.erase", Subject: "0123456789abcdef", Details: []byte(`{"traits":["email","plan"]}`), PrevHash: audit.Genesis}
	b.ReportAllocs()
	for b.Loop() {
		audit.Hash(e)
	}
}
