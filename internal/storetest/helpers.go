package storetest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// at returns a fixed instant plus sec seconds, so that tests read as
// offsets from one point in time.
func at(sec int) time.Time {
	return time.Date(2024, 5, 17, 9, 30, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second)
}

func messageHash() custos.MessageHash {
	var h custos.MessageHash
	rand.Read(h[:])
	return h
}

func identifierHash() custos.IdentifierHash {
	var h custos.IdentifierHash
	rand.Read(h[:])
	return h
}

// filled returns a 16-byte id with every byte b.
func filled(b byte) [16]byte {
	var id [16]byte
	for i := range id {
		id[i] = b
	}
	return id
}

// withLast returns id with its last byte replaced.
func withLast(id [16]byte, last byte) [16]byte {
	id[len(id)-1] = last
	return id
}

// idPair is two ids that an implementation keying by id prefix could
// confuse.
type idPair struct {
	name string
	a, b [16]byte
}

// neighbourPairs returns pairs of ids that sort next to each other or share
// all but their last byte, including the 0x00 and 0xff edges where a
// prefix end computation carries.
func neighbourPairs() []idPair {
	p := [16]byte([]byte(rand.Text())[:16]) // random, and never 0x00 or 0xff
	carryA, carryB := p, p
	carryA[14], carryA[15] = 0x0a, 0xff
	carryB[14], carryB[15] = 0x0b, 0x00
	return []idPair{
		{"unrelated", [16]byte(messageHash()), [16]byte(messageHash())},
		{"last byte 00 and 01", withLast(p, 0x00), withLast(p, 0x01)},
		{"last byte fe and ff", withLast(p, 0xfe), withLast(p, 0xff)},
		{"last byte 00 and ff", withLast(p, 0x00), withLast(p, 0xff)},
		{"carry neighbours 0aff and 0b00", carryA, carryB},
		{"all 00 and all ff", filled(0x00), filled(0xff)},
		{"all 00 and its successor", filled(0x00), withLast(filled(0x00), 0x01)},
		{"all ff and its predecessor", filled(0xff), withLast(filled(0xff), 0xfe)},
	}
}

// newTenant creates a tenant with a random id.
func newTenant(t *testing.T, st custos.Store) custos.TenantID {
	t.Helper()
	id := custos.NewTenantID()
	createTenant(t, st, id)
	return id
}

// createTenant creates a tenant with the given id. Data is always written
// under a created tenant: a backend may reasonably require one.
func createTenant(t *testing.T, st custos.Store, id custos.TenantID) {
	t.Helper()
	ten := &custos.Tenant{ID: id, Name: "tenant " + id.String(), Region: "eu", CreatedAt: at(0)}
	if err := st.CreateTenant(t.Context(), ten); err != nil {
		t.Fatalf("CreateTenant(%s) = %v, want nil", id, err)
	}
}

// apply applies ws and waits for them to be durable.
func apply(t *testing.T, st custos.Store, ws ...*custos.Write) {
	t.Helper()
	wait, err := st.Apply(t.Context(), ws)
	if err != nil {
		t.Fatalf("Apply(%d writes) = %v, want nil", len(ws), err)
	}
	if err := wait(); err != nil {
		t.Fatalf("Apply(%d writes): wait() = %v, want nil", len(ws), err)
	}
}

func event(s custos.SubjectID, tm time.Time, id custos.MessageHash, value string) custos.StoredEvent {
	return custos.StoredEvent{Subject: s, Time: tm, ID: id, Value: []byte(value)}
}

// compareEvents orders events as the contract does: by Time, then ID.
func compareEvents(a, b custos.StoredEvent) int {
	return cmp.Or(a.Time.Compare(b.Time), bytes.Compare(a.ID[:], b.ID[:]))
}

// sorted returns a copy of es in contract order.
func sorted(es []custos.StoredEvent) []custos.StoredEvent {
	es = slices.Clone(es)
	slices.SortFunc(es, compareEvents)
	return es
}

func sameEvent(a, b custos.StoredEvent) bool {
	return a.Subject == b.Subject && a.Time.Equal(b.Time) && a.ID == b.ID && bytes.Equal(a.Value, b.Value)
}

func formatEvents(es []custos.StoredEvent) string {
	var b strings.Builder
	b.WriteString("[")
	for i, e := range es {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "{%s %s %x %q}", e.Subject, e.Time.UTC().Format(time.RFC3339Nano), e.ID[:], e.Value)
	}
	b.WriteString("]")
	return b.String()
}

// listEvents returns the subject's events after the cursor.
func listEvents(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID, after *custos.EventCursor) []custos.StoredEvent {
	t.Helper()
	got, err := collectEvents(t.Context(), st, ten, s, after)
	if err != nil {
		t.Fatalf("Events(tenant %s, subject %s, after %s) = %v, want nil", ten, s, formatCursor(after), err)
	}
	return got
}

// collectEvents returns the subject's events after the cursor; unlike
// listEvents it may be called from any goroutine.
func collectEvents(ctx context.Context, st custos.Store, ten custos.TenantID, s custos.SubjectID, after *custos.EventCursor) ([]custos.StoredEvent, error) {
	var got []custos.StoredEvent
	err := st.Events(ctx, ten, s, after, func(e custos.StoredEvent) (bool, error) {
		got = append(got, e)
		return true, nil
	})
	return got, err
}

// checkEvents checks that the subject's events are exactly want, in
// contract order.
func checkEvents(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID, want []custos.StoredEvent) {
	t.Helper()
	got := listEvents(t, st, ten, s, nil)
	if !slices.EqualFunc(got, want, sameEvent) {
		t.Errorf("Events(tenant %s, subject %s):\ngot  %s\nwant %s", ten, s, formatEvents(got), formatEvents(want))
	}
}

// checkSpan checks EventSpan, and EventDays where the store has it,
// against the events the subject should hold.
func checkSpan(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID, events []custos.StoredEvent) {
	t.Helper()
	checkDays(t, st, ten, s, events)
	first, last, ok, err := st.EventSpan(t.Context(), ten, s)
	if err != nil {
		t.Fatalf("EventSpan(tenant %s, subject %s) = %v, want nil", ten, s, err)
	}
	if len(events) == 0 {
		if ok {
			t.Errorf("EventSpan(tenant %s, subject %s) = %v, %v, true; want ok false for a subject without events", ten, s, first, last)
		}
		return
	}
	es := sorted(events)
	wantFirst, wantLast := es[0].Time, es[len(es)-1].Time
	if !ok || !first.Equal(wantFirst) || !last.Equal(wantLast) {
		t.Errorf("EventSpan(tenant %s, subject %s) = %v, %v, %v; want %v, %v, true", ten, s, first, last, ok, wantFirst, wantLast)
	}
}

// checkDays checks that a store with a day index (custos.EventDayReader)
// lists exactly the UTC days of the events the subject should hold.
func checkDays(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID, events []custos.StoredEvent) {
	t.Helper()
	dr, ok := st.(custos.EventDayReader)
	if !ok {
		return
	}
	got, err := dr.EventDays(t.Context(), ten, s)
	if err != nil {
		t.Fatalf("EventDays(tenant %s, subject %s) = %v, want nil", ten, s, err)
	}
	var want []time.Time
	for _, e := range sorted(events) {
		if d := e.Time.UTC().Truncate(24 * time.Hour); len(want) == 0 || !want[len(want)-1].Equal(d) {
			want = append(want, d)
		}
	}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("EventDays(tenant %s, subject %s) = %v, want %v", ten, s, got, want)
	}
}

func checkProfile(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID, want string) {
	t.Helper()
	got, err := st.Profile(t.Context(), ten, s)
	if err != nil || string(got) != want {
		t.Errorf("Profile(tenant %s, subject %s) = %q, %v; want %q, nil", ten, s, got, err, want)
	}
}

func checkNoProfile(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID) {
	t.Helper()
	got, err := st.Profile(t.Context(), ten, s)
	checkNotFound(t, fmt.Sprintf("Profile(tenant %s, subject %s) returned %q and", ten, s, got), err)
}

func checkSubject(t *testing.T, st custos.Store, ten custos.TenantID, h custos.IdentifierHash, want custos.SubjectID) {
	t.Helper()
	got, err := st.Subject(t.Context(), ten, h)
	if err != nil || got != want {
		t.Errorf("Subject(tenant %s, hash %x) = %s, %v; want %s, nil", ten, h[:], got, err, want)
	}
}

func checkNoSubject(t *testing.T, st custos.Store, ten custos.TenantID, h custos.IdentifierHash) {
	t.Helper()
	_, err := st.Subject(t.Context(), ten, h)
	checkNotFound(t, fmt.Sprintf("Subject(tenant %s, hash %x)", ten, h[:]), err)
}

func checkSeen(t *testing.T, st custos.Store, ten custos.TenantID, want custos.Seen) {
	t.Helper()
	got, err := st.Seen(t.Context(), ten, want.ID)
	if err != nil || got.ID != want.ID || got.Subject != want.Subject || !got.Time.Equal(want.Time) {
		t.Errorf("Seen(tenant %s, id %x) = {%x %s %v}, %v; want {%x %s %v}, nil",
			ten, want.ID[:], got.ID[:], got.Subject, got.Time, err, want.ID[:], want.Subject, want.Time)
	}
}

func checkNotSeen(t *testing.T, st custos.Store, ten custos.TenantID, id custos.MessageHash) {
	t.Helper()
	_, err := st.Seen(t.Context(), ten, id)
	checkNotFound(t, fmt.Sprintf("Seen(tenant %s, id %x)", ten, id[:]), err)
}

// checkNotFound checks that err is custos.ErrNotFound, as the contract
// requires of every read of something absent.
func checkNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, custos.ErrNotFound) || custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("%s: error %v, want one matching custos.ErrNotFound", what, err)
	}
}

// subjectData is everything the suite stores about one subject, so that it
// can check the subject is intact or gone.
type subjectData struct {
	tenant  custos.TenantID
	subject custos.SubjectID
	events  []custos.StoredEvent // in contract order
	profile string
	link    custos.IdentifierHash
	seen    []custos.Seen
}

// populate stores events (before 1970, now, and in 2200, with edge ids),
// a profile, a link and dedup records for s, and returns what it stored.
func populate(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID, label string) subjectData {
	t.Helper()
	nowRandom, laterRandom := messageHash(), messageHash()
	d := subjectData{
		tenant:  ten,
		subject: s,
		events: sorted([]custos.StoredEvent{
			event(s, time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC), custos.MessageHash(filled(0x00)), label+" 1969"),
			event(s, at(0), custos.MessageHash(filled(0xff)), label+" now ff"),
			event(s, at(0), nowRandom, label+" now random"),
			event(s, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), laterRandom, label+" 2200"),
		}),
		profile: label + " profile",
		link:    identifierHash(),
		// Dedup records are keyed by message hash within a tenant, so only
		// the random hashes get one: two populated subjects share the others.
		seen: []custos.Seen{
			{ID: nowRandom, Subject: s, Time: at(0)},
			{ID: laterRandom, Subject: s, Time: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)},
		},
	}
	apply(t, st, &custos.Write{
		Tenant:   ten,
		Events:   d.events,
		Profiles: []custos.StoredProfile{{Subject: s, Value: []byte(d.profile)}},
		Links:    []custos.Link{{Hash: d.link, Subject: s}},
		Seen:     d.seen,
	})
	return d
}

// checkIntact checks that every read returns what populate stored.
func checkIntact(t *testing.T, st custos.Store, d subjectData) {
	t.Helper()
	checkEvents(t, st, d.tenant, d.subject, d.events)
	checkSpan(t, st, d.tenant, d.subject, d.events)
	checkProfile(t, st, d.tenant, d.subject, d.profile)
	checkSubject(t, st, d.tenant, d.link, d.subject)
	for _, sn := range d.seen {
		checkSeen(t, st, d.tenant, sn)
	}
}

// checkErased checks that the subject has no events and no profile, which
// is what DeleteSubjects promises (links and dedup records are separate).
func checkErased(t *testing.T, st custos.Store, ten custos.TenantID, s custos.SubjectID) {
	t.Helper()
	checkEvents(t, st, ten, s, nil)
	checkSpan(t, st, ten, s, nil)
	checkNoProfile(t, st, ten, s)
}
