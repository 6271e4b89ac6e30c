package subjects_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/postgres"
	"github.com/custos-dev/custos/internal/subjects"
)

// node is one node's pipeline on a shared PostgreSQL data and key database.
type node struct {
	pipe *subjects.Pipeline
	rd   *subjects.Reader
	// retries counts the groups the node's writer composed again after
	// the store refused them as stale.
	retries *atomic.Int64
}

// sharedDB is one new data database and one new key database, with a
// tenant, that nodes share.
type sharedDB struct {
	data, keys string
	master     []byte
	ten        custos.TenantID
}

func newSharedDB(t *testing.T) sharedDB {
	t.Helper()
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	return sharedDB{data: pgtest.NewDatabase(t), keys: pgtest.NewDatabase(t), master: master, ten: custos.NewTenantID()}
}

// open starts a node on the databases with opts (its clock and
// OnStaleRetry are set here). stop closes it, saving its duplicate filter
// when opts name a file; it is also called at cleanup.
func (d sharedDB) open(t *testing.T, opts subjects.Options) (n node, stop func()) {
	t.Helper()
	return d.openWrapped(t, opts, nil)
}

// openWrapped is open with the pipeline writing through wrap's store
// (nil: the database's store itself).
func (d sharedDB) openWrapped(t *testing.T, opts subjects.Options, wrap func(*postgres.Store) custos.DataStore) (n node, stop func()) {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, d.data, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ds custos.DataStore = st
	if wrap != nil {
		ds = wrap(st)
	}
	ks, err := postgres.OpenKeyStore(ctx, d.keys, postgres.Options{MasterKey: d.master})
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.New(ctx, ks, d.master, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.CreateTenant(ctx, d.ten); err != nil {
		t.Fatal(err)
	}
	retries := new(atomic.Int64)
	opts.Now = func() time.Time { return t0.Add(time.Hour) }
	opts.OnStaleRetry = func() { retries.Add(1) }
	pipe, err := subjects.New(ctx, ds, ring, opts)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			pipe.Close()
			if err := pipe.SaveFilter(); err != nil {
				t.Error(err)
			}
			st.Close()
			ks.Close()
		})
	}
	t.Cleanup(stop)
	return node{pipe: pipe, rd: subjects.NewReader(st, ring), retries: retries}, stop
}

// store opens a handle on the data database of its own, as a test reads
// and writes it beside the nodes; it is closed at cleanup.
func (d sharedDB) store(t *testing.T) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), d.data, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// sharedNodes starts two nodes on one new data database and one new key
// database, with one tenant.
func sharedNodes(t *testing.T) (a, b node, ten custos.TenantID) {
	t.Helper()
	d := newSharedDB(t)
	a, _ = d.open(t, subjects.Options{})
	b, _ = d.open(t, subjects.Options{})
	return a, b, d.ten
}

// TestRefusedMergeKeepsTheOtherSubject: a merge composed by node B on a
// gate node A has since changed is refused by the store. The subject it
// would have absorbed keeps its key and its data (a refused group's
// after-durable work, the other key's shredding, is not done), and B's
// writer composes the group again on its refreshed caches: the client is
// answered 2xx, and every event of both subjects ends under one.
func TestRefusedMergeKeepsTheOtherSubject(t *testing.T) {
	a, b, ten := sharedNodes(t)
	ctx := context.Background()
	ingest := func(n node, m custos.Message) error {
		_, err := n.pipe.Ingest(ctx, ten, []custos.Message{m})
		return err
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	find := func(n node, typ custos.IdentifierType, v string) custos.SubjectID {
		t.Helper()
		s, err := n.rd.Find(ctx, ten, custos.Identifier{Type: typ, Value: v})
		if err != nil {
			t.Fatalf("find %s %s: %v", typ, v, err)
		}
		return s
	}
	// A person with user id u1, and a visitor anon-b node B knows.
	first, second := msg(custos.Track, "u1", "", 0), msg(custos.Track, "u1", "", time.Second)
	visit := msg(custos.Track, "", "anon-b", 2*time.Second)
	must(ingest(a, first))
	must(ingest(b, second)) // B caches u1's subject
	must(ingest(b, visit))
	// Node A changes the gate (a suppression of someone else): B's caches
	// are now older than the generation.
	if _, err := a.pipe.SetFlags(ctx, ten, custos.Identifier{Type: custos.UserID, Value: "other"}, func(f *custos.SubjectFlags) { f.Suppressed = true }); err != nil {
		t.Fatal(err)
	}
	// B merges anon-b's subject into u1's on stale caches: refused, then
	// composed again.
	link := msg(custos.Identify, "u1", "anon-b", 3*time.Second)
	if err := ingest(b, link); err != nil {
		t.Fatalf("node B: merge on stale caches = %v, want it composed again and stored", err)
	}
	if n := b.retries.Load(); n != 1 {
		t.Errorf("node B composed %d groups again, want 1 (the store refuses the stale merge once)", n)
	}
	s, u := find(a, custos.AnonymousID, "anon-b"), find(a, custos.UserID, "u1")
	if s != u {
		t.Fatalf("anon-b finds %s and u1 %s, want one subject", s, u)
	}
	// Had the refused attempt shredded the absorbed subject's key, the
	// composed-again merge would have found its event unreadable.
	evs, _, err := a.rd.Events(ctx, ten, u, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{first.MessageID, second.MessageID, visit.MessageID, link.MessageID}
	slices.Sort(want)
	if got := messageIDs(evs); !slices.Equal(got, want) {
		t.Errorf("the merged subject holds %v, want %v", got, want)
	}
}

// TestConcurrentTraitsOnTwoNodes: both nodes update the same people's
// profiles at once, each message a new trait. A write composed on a
// profile the other node had just replaced is refused by the store and
// composed again by the writer; under this sustained contention a group
// may still lose every try, and its client is answered Unavailable and
// sends again, as the SDKs do. Nothing else is answered, and no trait is
// lost.
func TestConcurrentTraitsOnTwoNodes(t *testing.T) {
	a, b, ten := sharedNodes(t)
	ctx := context.Background()
	const users, rounds = 3, 12
	var wg sync.WaitGroup
	var unavailable atomic.Int64
	errs := make(chan error, 2*users*rounds)
	for ni, n := range []node{a, b} {
		for u := range users {
			wg.Go(func() {
				for r := range rounds {
					m := msg(custos.Identify, fmt.Sprintf("u%d", u), "", time.Duration(r)*time.Millisecond)
					m.Traits = fmt.Appendf(nil, `{"n%d_%d":%d}`, ni, r, r)
					for {
						_, err := n.pipe.Ingest(ctx, ten, []custos.Message{m})
						if custos.ErrorCode(err) == custos.Unavailable {
							unavailable.Add(1)
							continue
						}
						if err != nil {
							errs <- fmt.Errorf("node %d, u%d, round %d: %w", ni, u, r, err)
						}
						break
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for u := range users {
		s, err := a.rd.Find(ctx, ten, custos.Identifier{Type: custos.UserID, Value: fmt.Sprintf("u%d", u)})
		if err != nil {
			t.Fatal(err)
		}
		p, err := b.rd.Profile(ctx, ten, s)
		if err != nil {
			t.Fatal(err)
		}
		for ni := range 2 {
			for r := range rounds {
				if k := fmt.Sprintf("n%d_%d", ni, r); p.Traits[k] == nil {
					t.Errorf("u%d lost trait %s", u, k)
				}
			}
		}
	}
	t.Logf("groups composed again: node A %d, node B %d; answered Unavailable: %d of %d messages",
		a.retries.Load(), b.retries.Load(), unavailable.Load(), 2*users*rounds)
}

// TestObservedCategoriesOnTwoNodes: both nodes have read the tenant's
// record of observed categories; each then sees a new category. The
// second to write has composed its record without the first's category:
// the store refuses it, and the writer composes the group again on the
// record as stored, keeping both.
func TestObservedCategoriesOnTwoNodes(t *testing.T) {
	a, b, ten := sharedNodes(t)
	ctx := context.Background()
	batch := func(body string) []custos.Message { return decode(t, body) }
	names := func(n node) []string {
		t.Helper()
		cats, err := n.rd.Observed(ctx, ten)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cats {
			out = append(out, c.Name)
		}
		return out
	}
	// Both nodes load the record (a message each, nothing new for B).
	if _, err := a.pipe.Ingest(ctx, ten, batch(`{"batch":[{"type":"track","event":"E","anonymousId":"x","messageId":"c1"}]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pipe.Ingest(ctx, ten, batch(`{"batch":[{"type":"track","event":"E","anonymousId":"x","messageId":"c2"}]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.pipe.Ingest(ctx, ten, batch(`{"batch":[{"type":"track","event":"E","anonymousId":"x","messageId":"c3","context":{"timezone":"Europe/Berlin"}}]}`)); err != nil {
		t.Fatal(err)
	}
	late := batch(`{"batch":[{"type":"track","event":"E","anonymousId":"x","messageId":"c4","context":{"userAgent":"Mozilla/5.0"}}]}`)
	if _, err := b.pipe.Ingest(ctx, ten, late); err != nil {
		t.Fatalf("node B, its record of categories stale: %v, want the group composed again and stored", err)
	}
	if n := b.retries.Load(); n != 1 {
		t.Errorf("node B composed %d groups again, want 1 (the store refuses its stale record once)", n)
	}
	got := names(a)
	for _, want := range []string{"location.timezone", "device.user_agent"} {
		if !slices.Contains(got, want) {
			t.Errorf("observed categories %v: %s missing", got, want)
		}
	}
}

// TestSavedFilterOnSharedStore: a node on a shared database saves its
// duplicate filter at an orderly stop and loads it at the next start
// instead of reading every deduplication record. What another node stored
// meanwhile is not in the loaded filter; the database's unique key on
// deduplication records catches it, the writer composes the group again,
// and the message is answered as a duplicate, stored once.
func TestSavedFilterOnSharedStore(t *testing.T) {
	ctx := context.Background()
	d := newSharedDB(t)
	ten := d.ten
	filter := t.TempDir() + "/dedupe.filter"
	// open starts a node with the filter file; it reports whether the
	// filter was rebuilt from the records.
	open := func(filterFile string) (n node, rebuilt *atomic.Bool, stop func()) {
		rebuilt = new(atomic.Bool)
		n, stop = d.open(t, subjects.Options{FilterFile: filterFile, OnRebuild: func(int, bool) { rebuilt.Store(true) }})
		return n, rebuilt, stop
	}
	ingest := func(n node, m custos.Message) subjects.Result {
		t.Helper()
		res, err := n.pipe.Ingest(ctx, ten, []custos.Message{m})
		if err != nil {
			t.Fatalf("ingest %s: %v", m.MessageID, err)
		}
		return res
	}
	a, _, stopA := open(filter)
	b, _, _ := open("")
	first, second := msg(custos.Track, "u1", "", 0), msg(custos.Track, "u1", "", time.Second)
	ingest(a, first)
	stopA()
	ingest(b, second) // while node A is stopped
	a, rebuilt, _ := open(filter)
	if rebuilt.Load() {
		t.Error("node A rebuilt its filter after an orderly stop, want the saved one loaded")
	}
	if res := ingest(a, first); res.Duplicates != 1 {
		t.Errorf("node A, a message it stored before its stop: %+v, want a duplicate", res)
	}
	if res := ingest(a, second); res.Duplicates != 1 {
		t.Errorf("node A, a message node B stored while A was stopped: %+v, want a duplicate", res)
	}
	if n := a.retries.Load(); n != 1 {
		t.Errorf("node A composed %d groups again, want 1 (the store's unique key refuses the message its filter missed)", n)
	}
	s, err := a.rd.Find(ctx, ten, custos.Identifier{Type: custos.UserID, Value: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := a.rd.Events(ctx, ten, s, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{first.MessageID, second.MessageID}
	slices.Sort(want)
	if got := messageIDs(evs); !slices.Equal(got, want) {
		t.Errorf("u1's events %v, want each message once: %v", got, want)
	}
}

// TestFencedControlOnSharedStore: a change made through the ingest writer
// by work under a lease (here a suppression, as an erasure's steps and
// the retention sweep make theirs) is refused once the lease has a newer
// holder, and changes nothing: not the store, and not the node's gate, so
// the person's messages are still stored. Under the current holder's
// fence it is written and in force.
func TestFencedControlOnSharedStore(t *testing.T) {
	d := newSharedDB(t)
	n, _ := d.open(t, subjects.Options{})
	ctx := context.Background()
	st := d.store(t)
	const lease = "request/req_fenced"
	old, err := st.AcquireLease(ctx, d.ten, lease, "node-a", 50*time.Millisecond)
	if err != nil || old == 0 {
		t.Fatalf("node A's lease: token %d, %v", old, err)
	}
	time.Sleep(100 * time.Millisecond) // node A stalls past its lease
	cur, err := st.AcquireLease(ctx, d.ten, lease, "node-b", time.Minute)
	if err != nil || cur == 0 || cur == old {
		t.Fatalf("node B's take-over: token %d (A's %d), %v", cur, old, err)
	}
	id := custos.Identifier{Type: custos.UserID, Value: "mia"}
	suppress := func(token uint64) error {
		_, err := n.pipe.SetFlags(custos.WithFence(ctx, custos.Fence{Tenant: d.ten, Lease: lease, Token: token}), d.ten, id,
			func(f *custos.SubjectFlags) { f.Suppressed = true })
		return err
	}
	stored := func(mid string) int {
		t.Helper()
		res, err := n.pipe.Ingest(ctx, d.ten, decode(t, `{"batch":[{"type":"track","event":"E","userId":"mia","messageId":"`+mid+`"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		return res.Stored
	}
	flagged := func() int {
		t.Helper()
		count := 0
		if err := st.EachFlags(ctx, func(ft custos.TenantID, r custos.FlagsRecord) error {
			if ft == d.ten && r.Flags.Suppressed {
				count++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return count
	}

	if got := stored("m0"); got != 1 { // the person exists, known to the gate
		t.Fatalf("a first message: %d stored, want 1", got)
	}
	if err := suppress(old); !errors.Is(err, custos.ErrFenced) || custos.ErrorCode(err) != custos.Conflict {
		t.Fatalf("suppression under the stalled holder's fence: %v, want a Conflict caused by ErrFenced", err)
	}
	if got := flagged(); got != 0 {
		t.Errorf("%d suppressions stored by the refused write, want 0", got)
	}
	if got := stored("m1"); got != 1 {
		t.Errorf("after the refused suppression, a message of the person: %d stored, want 1 (the gate must not hold what the store refused)", got)
	}
	if err := suppress(cur); err != nil {
		t.Fatalf("suppression under the current holder's fence: %v", err)
	}
	if got := flagged(); got != 1 {
		t.Errorf("%d suppressions stored under the current fence, want 1", got)
	}
	if got := stored("m2"); got != 0 {
		t.Errorf("after the suppression, a message of the person: %d stored, want 0", got)
	}
}

// TestNewPeoplesConsentLeavesTheGate: the first messages of new people
// carry their consent (a consent manager repeats it on every event). The
// records they add do not move the tenant's gate generation, so neither
// node's writes are refused as stale; a change of an existing person's
// consent does move it, and the other node, which cached that person's
// grant, follows: the same withdrawal sent through it is no change.
func TestNewPeoplesConsentLeavesTheGate(t *testing.T) {
	d := newSharedDB(t)
	a, _ := d.open(t, subjects.Options{})
	b, _ := d.open(t, subjects.Options{})
	ctx := context.Background()
	st := d.store(t)
	gen := func() uint64 {
		t.Helper()
		g, err := st.Generation(ctx, d.ten)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	pol := consent.NewPolicy(&custos.Settings{})
	ingest := func(n node, user string, at time.Duration, consentJSON string) subjects.Result {
		t.Helper()
		res, err := n.pipe.IngestWith(ctx, d.ten, []custos.Message{withConsent(msg(custos.Track, user, "", at), consentJSON)}, pol)
		if err != nil {
			t.Fatalf("ingest %s: %v", user, err)
		}
		return res
	}
	granted := `{"consent":{"categoryPreferences":{"Marketing":true,"Analytics":true}}}`
	withdrawn := `{"consent":{"categoryPreferences":{"Marketing":false,"Analytics":true}}}`

	before := gen()
	for i := range 20 {
		if res := ingest([]node{a, b}[i%2], fmt.Sprintf("new%d", i), 0, granted); res.Stored != 1 || res.Consents != 2 {
			t.Errorf("new%d's first message: %+v, want stored with 2 consent records", i, res)
		}
	}
	if after := gen(); after != before {
		t.Errorf("20 new people's consent moved the gate generation from %d to %d, want unchanged", before, after)
	}
	if n := a.retries.Load() + b.retries.Load(); n != 0 {
		t.Errorf("%d groups were refused as stale and composed again, want none", n)
	}

	// new1 came through node B, which cached its grant.
	if res := ingest(a, "new1", time.Second, withdrawn); res.Consents != 1 {
		t.Errorf("the withdrawal through node A: %+v, want 1 consent record", res)
	}
	if after := gen(); after != before+1 {
		t.Errorf("a withdrawal moved the gate generation from %d to %d, want %d", before, after, before+1)
	}
	if res := ingest(b, "new1", 2*time.Second, withdrawn); res.Consents != 0 || res.Stored != 1 {
		t.Errorf("the same withdrawal through node B: %+v, want stored and no consent record (no change)", res)
	}
	if res := ingest(b, "new1", 3*time.Second, granted); res.Consents != 1 {
		t.Errorf("a grant again through node B: %+v, want 1 consent record", res)
	}
}
