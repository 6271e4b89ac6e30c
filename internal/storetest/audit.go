package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// auditEntry returns entry seq of a made-up chain, every field set and
// marked with label so that entries of different chains differ. A store
// does not check hashes, so any strings do. The time is in a zone other
// than UTC, with microseconds, so that only Equal compares it.
func auditEntry(seq uint64, label string) custos.AuditEntry {
	zone := time.FixedZone("UTC+2", 2*60*60)
	return custos.AuditEntry{
		Seq:       seq,
		Time:      at(int(seq)).Add(time.Duration(seq) * time.Microsecond).In(zone),
		Actor:     "key:" + label,
		Action:    "subject.erase",
		Subject:   fmt.Sprintf("pseudonym %s %d", label, seq),
		RequestID: fmt.Sprintf("req_%s_%d", label, seq),
		Details:   json.RawMessage(`{"chain":` + strconv.Quote(label) + `,"seq":` + strconv.FormatUint(seq, 10) + `}`),
		PrevHash:  fmt.Sprintf("prev %s %d", label, seq),
		Hash:      fmt.Sprintf("hash %s %d", label, seq),
	}
}

// auditChain returns entries 1 to n of a made-up chain.
func auditChain(n int, label string) []custos.AuditEntry {
	es := make([]custos.AuditEntry, n)
	for i := range es {
		es[i] = auditEntry(uint64(i+1), label)
	}
	return es
}

// auditDiff lists the fields in which got differs from want. Details are
// compared byte for byte: the chain's hashes cover the stored bytes, so a
// store that re-encodes them breaks verification.
func auditDiff(got, want custos.AuditEntry) []string {
	var d []string
	if got.Seq != want.Seq {
		d = append(d, fmt.Sprintf("Seq %d, want %d", got.Seq, want.Seq))
	}
	if !got.Time.Equal(want.Time) {
		d = append(d, fmt.Sprintf("Time %v, want %v", got.Time, want.Time))
	}
	for _, f := range []struct{ name, got, want string }{
		{"Actor", got.Actor, want.Actor},
		{"Action", got.Action, want.Action},
		{"Subject", got.Subject, want.Subject},
		{"RequestID", got.RequestID, want.RequestID},
		{"PrevHash", got.PrevHash, want.PrevHash},
		{"Hash", got.Hash, want.Hash},
	} {
		if f.got != f.want {
			d = append(d, fmt.Sprintf("%s %q, want %q", f.name, f.got, f.want))
		}
	}
	if !bytes.Equal(got.Details, want.Details) {
		d = append(d, fmt.Sprintf("Details %q, want %q", got.Details, want.Details))
	}
	return d
}

func auditSeqs(es []custos.AuditEntry) string {
	var b strings.Builder
	b.WriteString("[")
	for i, e := range es {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d:%s", e.Seq, e.Actor)
	}
	b.WriteString("]")
	return b.String()
}

// chainName names a chain in messages; the operator chain has no tenant.
func chainName(chain custos.TenantID) string {
	if chain == custos.OperatorChain {
		return "operator chain"
	}
	return "chain " + chain.String()
}

// appendAudit appends es to the chain, each expected to succeed.
func appendAudit(t *testing.T, st custos.Store, chain custos.TenantID, es ...custos.AuditEntry) {
	t.Helper()
	for _, e := range es {
		if err := st.AppendAudit(t.Context(), chain, &e); err != nil {
			t.Fatalf("AppendAudit(%s, seq %d) = %v, want nil", chainName(chain), e.Seq, err)
		}
	}
}

// checkAuditEntries checks that AuditEntries(after, limit) of the chain
// returns exactly want.
func checkAuditEntries(t *testing.T, st custos.Store, chain custos.TenantID, after uint64, limit int, want []custos.AuditEntry) {
	t.Helper()
	what := fmt.Sprintf("AuditEntries(%s, after %d, limit %d)", chainName(chain), after, limit)
	got, err := st.AuditEntries(t.Context(), chain, after, limit)
	if err != nil {
		t.Errorf("%s = %v, want nil", what, err)
		return
	}
	if len(got) != len(want) {
		t.Errorf("%s:\ngot  %s\nwant %s", what, auditSeqs(got), auditSeqs(want))
		return
	}
	for i := range got {
		for _, d := range auditDiff(got[i], want[i]) {
			t.Errorf("%s: entry %d: %s", what, i, d)
		}
	}
}

// checkLastAudit checks LastAudit of the chain: want, or an empty chain
// if want is nil.
func checkLastAudit(t *testing.T, st custos.Store, chain custos.TenantID, want *custos.AuditEntry) {
	t.Helper()
	got, ok, err := st.LastAudit(t.Context(), chain)
	switch {
	case err != nil:
		t.Errorf("LastAudit(%s) = %v, want nil", chainName(chain), err)
	case want == nil && ok:
		t.Errorf("LastAudit(%s) = entry %d, true; want ok false for an empty chain", chainName(chain), got.Seq)
	case want != nil && !ok:
		t.Errorf("LastAudit(%s) = ok false, want entry %d", chainName(chain), want.Seq)
	case want != nil:
		for _, d := range auditDiff(got, *want) {
			t.Errorf("LastAudit(%s): %s", chainName(chain), d)
		}
	}
}

func testAuditPages(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	// Twelve entries, so that ordering sequence numbers as strings ("10"
	// before "2") shows.
	chain := auditChain(12, "pages")
	appendAudit(t, st, ten, chain...)

	tests := []struct {
		after    uint64
		limit    int
		from, to int // the slice of chain wanted
	}{
		{0, 100, 0, 12},
		{0, 12, 0, 12},
		{0, 1, 0, 1},
		{0, 5, 0, 5},
		{5, 5, 5, 10},
		{10, 5, 10, 12},
		{1, 10, 1, 11},
		{11, 1, 11, 12},
		{12, 5, 12, 12},
		{100, 5, 12, 12},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("after %d limit %d", tc.after, tc.limit), func(t *testing.T) {
			checkAuditEntries(t, st, ten, tc.after, tc.limit, chain[tc.from:tc.to])
		})
	}

	// Walking page by page from the last sequence number seen, as a
	// verifier does, reads the chain once, in order.
	var walked []custos.AuditEntry
	var after uint64
	for range len(chain) + 1 {
		page, err := st.AuditEntries(t.Context(), ten, after, 5)
		if err != nil {
			t.Fatalf("AuditEntries(%s, after %d, limit 5) = %v, want nil", chainName(ten), after, err)
		}
		if len(page) == 0 {
			break
		}
		walked = append(walked, page...)
		after = page[len(page)-1].Seq
	}
	if got, want := auditSeqs(walked), auditSeqs(chain); got != want {
		t.Errorf("walking AuditEntries(%s) in pages of 5: got %s, want %s", chainName(ten), got, want)
	}
}

func testAuditRoundTrip(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	tests := []struct {
		name   string
		change func(e *custos.AuditEntry)
	}{
		{"every field set", func(*custos.AuditEntry) {}},
		{"optional fields empty", func(e *custos.AuditEntry) { e.Subject, e.RequestID, e.Details = "", "", nil }},
		{"strings with quotes, HTML characters and non-ASCII", func(e *custos.AuditEntry) {
			e.Actor = `key:"o'neil" <ops> & co`
			e.Subject = "pseudonym ünïcödé 日本 \u2028"
			e.RequestID = `req_\"1\"`
		}},
		{"time far from now, in another zone", func(e *custos.AuditEntry) {
			e.Time = time.Date(2199, 12, 31, 23, 59, 59, 999999000, time.FixedZone("UTC+5:30", 5*60*60+30*60))
		}},
		{"time before 1970", func(e *custos.AuditEntry) {
			e.Time = time.Date(1901, 2, 3, 4, 5, 6, 7000, time.FixedZone("UTC-8", -8*60*60))
		}},
		// Details as json.Marshal writes them can still differ from
		// what a database's JSON type gives back: key order, escapes,
		// numbers.
		{"details compact with keys unsorted and nested", func(e *custos.AuditEntry) {
			e.Details = json.RawMessage(`{"z":1,"a":[true,false,null,"x",{"b":2,"a":1}],"m":{},"l":[]}`)
		}},
		{"details with escapes as written", func(e *custos.AuditEntry) {
			e.Details = json.RawMessage(`{"s":"\u00e9\u003c\"\\\/\n\t","t":"é日本"}`)
		}},
		{"details numbers as written", func(e *custos.AuditEntry) {
			e.Details = json.RawMessage(`{"big":123456789012345678901234567890,"dec":1.50,"exp":1E+2,"neg":-0.0}`)
		}},
		{"details an array", func(e *custos.AuditEntry) { e.Details = json.RawMessage(`["email","plan"]`) }},
		{"details a string", func(e *custos.AuditEntry) { e.Details = json.RawMessage(`"done"`) }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := auditEntry(uint64(i+1), "round trip")
			tc.change(&e)
			want := e
			want.Details = bytes.Clone(e.Details)
			appendAudit(t, st, ten, e)
			checkAuditEntries(t, st, ten, e.Seq-1, 1, []custos.AuditEntry{want})
			checkLastAudit(t, st, ten, &want)
		})
	}
}

func testAuditConflict(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	chain := auditChain(3, "original")
	appendAudit(t, st, ten, chain...)

	tests := []struct {
		name  string
		entry custos.AuditEntry
	}{
		{"first entry, every field different", auditEntry(1, "intruder")},
		{"middle entry, every field different", auditEntry(2, "intruder")},
		{"newest entry, every field different", auditEntry(3, "intruder")},
		{"newest entry, identical", chain[2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := st.AppendAudit(t.Context(), ten, &tc.entry)
			if got := custos.ErrorCode(err); err == nil || got != custos.Conflict {
				t.Errorf("AppendAudit(%s, seq %d) of a taken seq = %v (code %s), want code %s", chainName(ten), tc.entry.Seq, err, got, custos.Conflict)
			}
			checkAuditEntries(t, st, ten, 0, 100, chain)
			checkLastAudit(t, st, ten, &chain[2])
		})
	}

	// The refusals leave the chain able to grow.
	next := auditEntry(4, "original")
	appendAudit(t, st, ten, next)
	checkAuditEntries(t, st, ten, 0, 100, append(chain, next))
}

func testAuditLast(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten, other := newTenant(t, st), newTenant(t, st)
	checkLastAudit(t, st, ten, nil)
	checkAuditEntries(t, st, ten, 0, 100, nil)
	checkLastAudit(t, st, custos.OperatorChain, nil)

	for _, e := range auditChain(4, "last") {
		appendAudit(t, st, ten, e)
		checkLastAudit(t, st, ten, &e)
	}
	checkLastAudit(t, st, other, nil)
	checkLastAudit(t, st, custos.OperatorChain, nil)
}

// testAuditChainsIndependent keeps chains side by side under tenant ids
// that a store keying by id prefix could confuse, and the operator chain
// (the zero id) beside them: each holds the same sequence numbers.
func testAuditChainsIndependent(t *testing.T, open func(*testing.T) custos.Store) {
	for _, pair := range neighbourPairs() {
		t.Run(pair.name, func(t *testing.T) {
			st := open(t)
			chains := []custos.TenantID{custos.OperatorChain}
			for _, id := range []custos.TenantID{custos.TenantID(pair.a), custos.TenantID(pair.b)} {
				if id != custos.OperatorChain { // the pair "all 00 and its successor"
					createTenant(t, st, id)
					chains = append(chains, id)
				}
			}
			want := make([][]custos.AuditEntry, len(chains))
			for i := range chains {
				want[i] = auditChain(i+2, fmt.Sprintf("chain %d", i))
			}
			// Interleaved, so that no chain is written in one go.
			for seq := range len(want[len(want)-1]) {
				for i, c := range chains {
					if seq < len(want[i]) {
						appendAudit(t, st, c, want[i][seq])
					}
				}
			}
			for i, c := range chains {
				checkAuditEntries(t, st, c, 0, 100, want[i])
				checkAuditEntries(t, st, c, uint64(len(want[i])), 100, nil)
				checkLastAudit(t, st, c, &want[i][len(want[i])-1])
			}
		})
	}
}

// testAuditOutlivesTenant checks that DeleteTenant leaves the tenant's
// audit chain in place: it is the record of what was done, deletion
// included, and holds no personal data.
func testAuditOutlivesTenant(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	gone, kept := newTenant(t, st), newTenant(t, st)
	populate(t, st, gone, custos.NewSubjectID(), "gone")
	goneChain, keptChain := auditChain(3, "gone"), auditChain(2, "kept")
	appendAudit(t, st, gone, goneChain...)
	appendAudit(t, st, kept, keptChain...)
	op := auditChain(1, "operator")
	appendAudit(t, st, custos.OperatorChain, op...)

	if err := st.DeleteTenant(t.Context(), gone); err != nil {
		t.Fatalf("DeleteTenant(%s) = %v, want nil", gone, err)
	}
	checkAuditEntries(t, st, gone, 0, 100, goneChain)
	checkLastAudit(t, st, gone, &goneChain[2])
	checkAuditEntries(t, st, kept, 0, 100, keptChain)
	checkAuditEntries(t, st, custos.OperatorChain, 0, 100, op)

	// The deletion itself is recorded in the deleted tenant's chain, after
	// the fact.
	next := auditEntry(4, "gone")
	appendAudit(t, st, gone, next)
	checkAuditEntries(t, st, gone, 0, 100, append(goneChain, next))
	checkLastAudit(t, st, gone, &next)
}
