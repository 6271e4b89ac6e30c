package audit

import (
	"fmt"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
)

// TestVerifyAcrossPages verifies chains read in pages smaller than the
// chain, so that page boundaries fall inside it.
func TestVerifyAcrossPages(t *testing.T) {
	st, err := pebble.Open(t.TempDir(), pebble.Options{CacheSize: 4 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(st, func() time.Time { at = at.Add(time.Second); return at })
	tn := custos.NewTenantID()
	var head string
	for i := range 10 {
		e, err := l.Record(t.Context(), tn, Entry{Actor: "op", Action: fmt.Sprintf("a%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		head = e.Hash
	}
	for _, size := range []int{1, 3, 5, 9, 10, 11} {
		checked, gotHead, brk, err := Verify(pages(t.Context(), st, tn, size))
		if err != nil || brk != nil || checked != 10 || gotHead != head {
			t.Errorf("Verify in pages of %d = %d, %s, %+v, %v; want 10, %s, no break, nil", size, checked, gotHead, brk, err, head)
		}
	}
	checked, gotHead, brk, err := Verify(pages(t.Context(), st, custos.NewTenantID(), 3))
	if err != nil || brk != nil || checked != 0 || gotHead != Genesis {
		t.Errorf("Verify of an empty chain = %d, %s, %+v, %v; want 0, Genesis, no break, nil", checked, gotHead, brk, err)
	}
}
