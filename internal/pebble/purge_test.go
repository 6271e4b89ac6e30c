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
