package storetest_test

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/storetest"
)

// TestRun runs the suite against memStore, the plainest implementation of
// the contract, so that a failure here is a bug in the suite and a suite
// that passes here assumes nothing about any real backend.
func TestRun(t *testing.T) {
	storetest.Run(t, func(*testing.T) custos.Store { return newMemStore() })
}

type subjectKey struct {
	tenant  custos.TenantID
	subject custos.SubjectID
}

type eventKey struct {
	nanos int64
	id    custos.MessageHash
}

type linkKey struct {
	tenant custos.TenantID
	hash   custos.IdentifierHash
}

type seenKey struct {
	tenant custos.TenantID
	id     custos.MessageHash
}

// memStore keeps everything in maps under one lock.
type memStore struct {
	mu       sync.RWMutex
	tenants  map[custos.TenantID]custos.Tenant
	events   map[subjectKey]map[eventKey][]byte
	profiles map[subjectKey][]byte
	links    map[linkKey]custos.SubjectID
	seen     map[seenKey]custos.Seen
}

func newMemStore() *memStore {
	return &memStore{
		tenants:  map[custos.TenantID]custos.Tenant{},
		events:   map[subjectKey]map[eventKey][]byte{},
		profiles: map[subjectKey][]byte{},
		links:    map[linkKey]custos.SubjectID{},
		seen:     map[seenKey]custos.Seen{},
	}
}

func (m *memStore) Close() error { return nil }

func (m *memStore) CreateTenant(_ context.Context, t *custos.Tenant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tenants[t.ID]; ok {
		return custos.Errorf(custos.Conflict, "tenant %s already exists", t.ID)
	}
	m.tenants[t.ID] = *t
	return nil
}

func (m *memStore) UpdateTenant(_ context.Context, t *custos.Tenant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tenants[t.ID]; !ok {
		return custos.ErrNotFound
	}
	m.tenants[t.ID] = *t
	return nil
}

func (m *memStore) Tenant(_ context.Context, id custos.TenantID) (*custos.Tenant, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.tenants[id]
	if !ok {
		return nil, custos.ErrNotFound
	}
	return &t, nil
}

func (m *memStore) Tenants(context.Context) ([]*custos.Tenant, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var ts []*custos.Tenant
	for _, t := range m.tenants {
		ts = append(ts, &t)
	}
	slices.SortFunc(ts, func(a, b *custos.Tenant) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return ts, nil
}

func (m *memStore) DeleteTenant(_ context.Context, id custos.TenantID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tenants[id]; !ok {
		return custos.ErrNotFound
	}
	delete(m.tenants, id)
	maps.DeleteFunc(m.events, func(k subjectKey, _ map[eventKey][]byte) bool { return k.tenant == id })
	maps.DeleteFunc(m.profiles, func(k subjectKey, _ []byte) bool { return k.tenant == id })
	maps.DeleteFunc(m.links, func(k linkKey, _ custos.SubjectID) bool { return k.tenant == id })
	maps.DeleteFunc(m.seen, func(k seenKey, _ custos.Seen) bool { return k.tenant == id })
	return nil
}

func (m *memStore) Apply(_ context.Context, ws []*custos.Write) (func() error, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range ws {
		for _, s := range w.DeleteSubjects {
			delete(m.events, subjectKey{w.Tenant, s})
			delete(m.profiles, subjectKey{w.Tenant, s})
		}
		for _, e := range w.DeleteEvents {
			delete(m.events[subjectKey{w.Tenant, e.Subject}], eventKey{e.Time.UnixNano(), e.ID})
		}
		for _, h := range w.Unlinks {
			delete(m.links, linkKey{w.Tenant, h})
		}
		for _, id := range w.Unsee {
			delete(m.seen, seenKey{w.Tenant, id})
		}
		for _, e := range w.Events {
			k := subjectKey{w.Tenant, e.Subject}
			if m.events[k] == nil {
				m.events[k] = map[eventKey][]byte{}
			}
			m.events[k][eventKey{e.Time.UnixNano(), e.ID}] = bytes.Clone(e.Value)
		}
		for _, p := range w.Profiles {
			m.profiles[subjectKey{w.Tenant, p.Subject}] = bytes.Clone(p.Value)
		}
		for _, l := range w.Links {
			m.links[linkKey{w.Tenant, l.Hash}] = l.Subject
		}
		for _, sn := range w.Seen {
			m.seen[seenKey{w.Tenant, sn.ID}] = sn
		}
	}
	return func() error { return nil }, nil
}

func (m *memStore) Subject(_ context.Context, t custos.TenantID, h custos.IdentifierHash) (custos.SubjectID, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s, ok := m.links[linkKey{t, h}]
	if !ok {
		return s, custos.ErrNotFound
	}
	return s, nil
}

func (m *memStore) Seen(_ context.Context, t custos.TenantID, id custos.MessageHash) (custos.Seen, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	sn, ok := m.seen[seenKey{t, id}]
	if !ok {
		return custos.Seen{}, custos.ErrNotFound
	}
	return sn, nil
}

func (m *memStore) EachSeen(ctx context.Context, fn func(custos.TenantID, custos.Seen) error) error {
	m.mu.RLock()
	all := make(map[seenKey]custos.Seen, len(m.seen))
	maps.Copy(all, m.seen)
	m.mu.RUnlock()
	for k, sn := range all {
		if err := fn(k.tenant, sn); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) Profile(_ context.Context, t custos.TenantID, s custos.SubjectID) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p, ok := m.profiles[subjectKey{t, s}]
	if !ok {
		return nil, custos.ErrNotFound
	}
	return bytes.Clone(p), nil
}

// sortedEvents returns a copy of the subject's events in contract order.
func (m *memStore) sortedEvents(t custos.TenantID, s custos.SubjectID) []custos.StoredEvent {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var es []custos.StoredEvent
	for k, v := range m.events[subjectKey{t, s}] {
		es = append(es, custos.StoredEvent{Subject: s, Time: time.Unix(0, k.nanos).UTC(), ID: k.id, Value: bytes.Clone(v)})
	}
	slices.SortFunc(es, func(a, b custos.StoredEvent) int {
		return cmp.Or(a.Time.Compare(b.Time), bytes.Compare(a.ID[:], b.ID[:]))
	})
	return es
}

func (m *memStore) Events(_ context.Context, t custos.TenantID, s custos.SubjectID, after *custos.EventCursor, fn func(custos.StoredEvent) (bool, error)) error {
	for _, e := range m.sortedEvents(t, s) {
		if after != nil && cmp.Or(e.Time.Compare(after.Time), bytes.Compare(e.ID[:], after.ID[:])) <= 0 {
			continue
		}
		if more, err := fn(e); err != nil || !more {
			return err
		}
	}
	return nil
}

func (m *memStore) EventSpan(_ context.Context, t custos.TenantID, s custos.SubjectID) (first, last time.Time, ok bool, err error) {
	es := m.sortedEvents(t, s)
	if len(es) == 0 {
		return first, last, false, nil
	}
	return es[0].Time, es[len(es)-1].Time, true, nil
}

// Purge has nothing to do: deleted map entries are gone.
func (m *memStore) Purge(context.Context, custos.TenantID, custos.SubjectID) error { return nil }
