package subjects_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/subjects"
	"github.com/custos-dev/custos/internal/testenv"
)

// heldSyncs is a store whose Applies take effect at once but become
// durable only when release is closed, as if the log's sync were slow.
type heldSyncs struct {
	*pebble.Store
	applies atomic.Int32
	release chan struct{}
}

func (h *heldSyncs) Apply(ctx context.Context, ws []*custos.Write) (func() error, error) {
	wait, err := h.Store.Apply(ctx, ws)
	if err != nil {
		return nil, err
	}
	h.applies.Add(1)
	return func() error { <-h.release; return wait() }, nil
}

// TestWindowFreedWhenApplied: a chunk leaves the writer's admission
// window once applied, not once durable. With a window of one chunk
// and the log's syncs held, every chunk of a 96-message request, then
// another tenant's message, is applied while the first chunk still
// waits for its sync; the requests return only once their messages are
// durable, with every message stored.
func TestWindowFreedWhenApplied(t *testing.T) {
	ctx := context.Background()
	st := testenv.Open(t, t.TempDir(), testenv.Master(), pebble.Options{})
	store := &heldSyncs{Store: st.Store, release: make(chan struct{})}
	a, b := custos.NewTenantID(), custos.NewTenantID()
	for _, ten := range []custos.TenantID{a, b} {
		if err := st.Ring.CreateTenant(ctx, ten); err != nil {
			t.Fatal(err)
		}
	}
	pipe, err := subjects.New(ctx, store, st.Ring, subjects.Options{FairWindow: 32, FairChunk: 32})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-store.release:
		default:
			close(store.release)
		}
		pipe.Close()
		st.Close(t)
	})
	msgs := func(prefix string, n int) []custos.Message {
		out := make([]custos.Message, n)
		for i := range out {
			out[i] = custos.Message{Type: custos.Track, MessageID: fmt.Sprintf("%s-%d", prefix, i), AnonymousID: fmt.Sprintf("%s-anon-%d", prefix, i%5),
				Event: "Clicked", Timestamp: t0, ReceivedAt: t0}
		}
		return out
	}
	type outcome struct {
		res subjects.Result
		err error
	}
	ingest := func(ten custos.TenantID, m []custos.Message) chan outcome {
		c := make(chan outcome, 1)
		go func() {
			res, err := pipe.Ingest(ctx, ten, m)
			c <- outcome{res, err}
		}()
		return c
	}
	base := store.applies.Load()
	flood := ingest(a, msgs("a", 96))
	testenv.Poll(t, 5*time.Second, "the 3 chunks of the request applied while the first waits for its sync",
		func() bool { return store.applies.Load()-base == 3 })
	other := ingest(b, msgs("b", 1))
	testenv.Poll(t, 5*time.Second, "the other tenant's message applied while the syncs are held",
		func() bool { return store.applies.Load()-base == 4 })
	select {
	case o := <-flood:
		t.Fatalf("the request returned before its messages were durable: %+v, %v", o.res, o.err)
	case o := <-other:
		t.Fatalf("the other request returned before its message was durable: %+v, %v", o.res, o.err)
	case <-time.After(50 * time.Millisecond):
	}
	close(store.release)
	for _, c := range []struct {
		name string
		out  chan outcome
		want int
	}{{"the 96-message request", flood, 96}, {"the other tenant's request", other, 1}} {
		o := <-c.out
		if o.err != nil || o.res.Stored != c.want {
			t.Errorf("%s: %+v, %v; want %d stored", c.name, o.res, o.err, c.want)
		}
	}
}
