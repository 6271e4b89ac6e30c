package pebble

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

// dirHolds reports whether any file in dir — tables, logs kept for
// reuse, the manifest — contains b.
func dirHolds(t *testing.T, dir string, b []byte) []string {
	t.Helper()
	var in []string
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted by Pebble's cleaner since the listing
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, b) {
			in = append(in, e.Name())
		}
	}
	return in
}

func TestPurgeLeavesNoBytesInAnyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tn, victim, other := custos.NewTenantID(), custos.NewSubjectID(), custos.NewSubjectID()
	apply := func(w *custos.Write) {
		t.Helper()
		w.Tenant = tn
		wait, err := s.Apply(ctx, []*custos.Write{w})
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	}
	random := func() []byte { b := make([]byte, 48); rand.Read(b); return b }
	victimBytes, otherBytes := random(), random()
	// Several logs and tables first, so that logs are recycled as in a
	// server that has run for a while.
	for range 4 {
		apply(&custos.Write{Events: []custos.StoredEvent{{Subject: custos.NewSubjectID(), Value: random()}}})
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	apply(&custos.Write{
		Events:   []custos.StoredEvent{{Subject: victim, Value: victimBytes}, {Subject: other, Value: otherBytes}},
		Profiles: []custos.StoredProfile{{Subject: victim, Value: victimBytes[:24]}},
	})
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(dirHolds(t, dir, victimBytes)) == 0 {
		t.Fatal("the victim's bytes are in no file before the purge; the test proves nothing")
	}
	apply(&custos.Write{DeleteSubjects: []custos.SubjectID{victim}})
	if err := s.Purge(ctx, tn, victim); err != nil {
		t.Fatal(err)
	}
	if in := dirHolds(t, dir, victimBytes[:24]); len(in) > 0 {
		t.Errorf("after Purge the victim's bytes are still in %v", in)
	}
	if len(dirHolds(t, dir, otherBytes)) == 0 {
		t.Error("another subject's bytes are gone after the purge")
	}
	n := 0
	if err := s.Events(ctx, tn, other, nil, func(custos.StoredEvent) (bool, error) { n++; return true, nil }); err != nil || n != 1 {
		t.Errorf("other subject's events after purge = %d (err %v), want 1", n, err)
	}
}

// TestPurgePassWithinInterval proves the bound an erasure certificate
// states: a subject deleted at any moment is purged from every file by
// the pass due at PurgeDueAt, at most PurgeInterval later, and no sooner
// than a pass runs (deletions are batched).
func TestPurgePassWithinInterval(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC)
	const interval = 10 * time.Minute
	s, err := Open(dir, Options{PurgeInterval: interval, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.PurgeDue(ctx); err != nil || n != 0 {
		t.Fatalf("first pass on an empty store = %d, %v; want 0, nil", n, err)
	}
	tn, victim, other := custos.NewTenantID(), custos.NewSubjectID(), custos.NewSubjectID()
	random := func() []byte { b := make([]byte, 48); rand.Read(b); return b }
	var victimBytes [][]byte
	w := &custos.Write{Tenant: tn}
	// The victim's events lie in three day buckets, among another
	// subject's, as a subject's history does.
	for d := range 3 {
		v, o := random(), random()
		victimBytes = append(victimBytes, v)
		at := now.AddDate(0, 0, -d)
		w.Events = append(w.Events, custos.StoredEvent{Subject: victim, Time: at, Value: v}, custos.StoredEvent{Subject: other, Time: at, Value: o})
	}
	otherBytes := w.Events[1].Value
	profile := &custos.Write{Tenant: tn, Profiles: []custos.StoredProfile{{Subject: victim, Value: random()}}}
	victimBytes = append(victimBytes, profile.Profiles[0].Value)
	apply := func(w *custos.Write) {
		t.Helper()
		wait, err := s.Apply(ctx, []*custos.Write{w})
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	}
	// Events and profile in tables of their own, so that purging the
	// subject's range alone would leave the event tables untouched.
	for _, w := range []*custos.Write{w, profile} {
		apply(w)
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(3 * time.Minute) // the deletion falls anywhere in the interval
	apply(&custos.Write{Tenant: tn, DeleteSubjects: []custos.SubjectID{victim}})
	due := s.PurgeDueAt()
	if limit := now.Add(interval); due.After(limit) {
		t.Fatalf("PurgeDueAt = %v, later than the deletion plus the interval (%v)", due, limit)
	}
	now = due.Add(-time.Second)
	if n, err := s.PurgeDue(ctx); err != nil || n != 0 {
		t.Fatalf("pass a second before due = %d, %v; want 0 (not due), nil", n, err)
	}
	if len(dirHolds(t, dir, victimBytes[0])) == 0 {
		t.Fatal("the victim's bytes are in no file before the pass; the test proves nothing")
	}
	now = due
	if n, err := s.PurgeDue(ctx); err != nil || n != 1 {
		t.Fatalf("pass at the due time = %d, %v; want 1 subject purged", n, err)
	}
	for i, b := range victimBytes {
		if in := dirHolds(t, dir, b); len(in) > 0 {
			t.Errorf("after the pass due at %v, the victim's record %d is still in %v", due, i, in)
		}
	}
	if len(dirHolds(t, dir, otherBytes)) == 0 {
		t.Error("another subject's bytes are gone after the pass")
	}
	if n, err := s.PurgeDue(ctx); err != nil || n != 0 {
		t.Errorf("pass right after = %d, %v; want 0 (nothing due)", n, err)
	}
	if next := s.PurgeDueAt(); !next.Equal(due.Add(interval)) {
		t.Errorf("next pass due %v, want %v", next, due.Add(interval))
	}
}
