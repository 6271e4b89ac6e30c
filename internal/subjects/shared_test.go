package subjects_test

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/postgres"
	"github.com/custos-dev/custos/internal/subjects"
)

// node is one node's pipeline on a shared PostgreSQL data and key database.
type node struct {
	pipe *subjects.Pipeline
	rd   *subjects.Reader
}

// sharedNodes starts two nodes on one new data database and one new key
// database, with one tenant.
func sharedNodes(t *testing.T) (a, b node, ten custos.TenantID) {
	t.Helper()
	ctx := context.Background()
	dataURL, keysURL := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	ten = custos.NewTenantID()
	open := func() node {
		st, err := postgres.Open(ctx, dataURL, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ks, err := postgres.OpenKeyStore(ctx, keysURL, postgres.Options{MasterKey: master})
		if err != nil {
			t.Fatal(err)
		}
		ring, err := keyring.New(ctx, ks, master, keyring.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ring.CreateTenant(ctx, ten); err != nil {
			t.Fatal(err)
		}
		clock := func() time.Time { return t0.Add(time.Hour) }
		pipe, err := subjects.New(ctx, st, ring, subjects.Options{Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pipe.Close(); st.Close(); ks.Close() })
		return node{pipe: pipe, rd: subjects.NewReader(st, ring)}
	}
	return open(), open(), ten
}

// TestRefusedMergeKeepsTheOtherSubject: a merge composed by node B on a
// gate node A has since changed is refused by the store; the subject it
// would have absorbed keeps its key and its data (a refused group's
// after-durable work, the other key's shredding, is not done), and the
// retry merges properly.
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
	must(ingest(a, msg(custos.Track, "u1", "", 0)))
	must(ingest(b, msg(custos.Track, "u1", "", time.Second))) // B caches u1's subject
	must(ingest(b, msg(custos.Track, "", "anon-b", 2*time.Second)))
	x := find(b, custos.AnonymousID, "anon-b")
	// Node A changes the gate (a suppression of someone else): B's caches
	// are now older than the generation.
	if _, err := a.pipe.SetFlags(ctx, ten, custos.Identifier{Type: custos.UserID, Value: "other"}, func(f *custos.SubjectFlags) { f.Suppressed = true }); err != nil {
		t.Fatal(err)
	}
	// B merges anon-b's subject into u1's on stale caches: refused.
	link := msg(custos.Identify, "u1", "anon-b", 3*time.Second)
	if err := ingest(b, link); custos.ErrorCode(err) != custos.Unavailable {
		t.Fatalf("node B: merge on stale caches = %v, want Unavailable", err)
	}
	if _, err := b.rd.Profile(ctx, ten, x); err != nil {
		t.Fatalf("the subject the refused merge would have absorbed: %v, want its profile (its key kept)", err)
	}
	// The client's retry merges.
	must(ingest(b, link))
	if s, u := find(a, custos.AnonymousID, "anon-b"), find(a, custos.UserID, "u1"); s != u {
		t.Errorf("after the retry anon-b finds %s and u1 %s, want one subject", s, u)
	}
}

// TestObservedCategoriesOnTwoNodes: both nodes have read the tenant's
// record of observed categories; each then sees a new category. The
// second to write has composed its record without the first's category:
// the store refuses it (503 to the client), and the retry keeps both.
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
	_, err := b.pipe.Ingest(ctx, ten, late)
	if custos.ErrorCode(err) != custos.Unavailable {
		t.Fatalf("node B writes its record over node A's unseen: %v, want Unavailable (retry)", err)
	}
	if _, err := b.pipe.Ingest(ctx, ten, late); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	got := names(a)
	for _, want := range []string{"location.timezone", "device.user_agent"} {
		if !slices.Contains(got, want) {
			t.Errorf("observed categories %v: %s missing", got, want)
		}
	}
}
