package pebble

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
)

// layoutVersion is the key layout this build reads and writes:
//
//	1: events under their subject: 0x02 <tenant> 's' <subject> 'e' <time> <msg>
//	2: events under their day:     0x10 <^day> <tenant> <subject> <time> <msg>,
//	   with the subject's day index 0x02 <tenant> 's' <subject> 'b' <day>
//
// A store without the marker is version 1 if it holds anything, else new.
const layoutVersion = 2

// layoutKey holds the layout version, outside every tenant's range.
var layoutKey = []byte{0x00, 'l', 'a', 'y', 'o', 'u', 't'}

// ErrOldLayout is returned by Open for a store written in an older key
// layout; Migrate rewrites it.
var ErrOldLayout = errors.New("the store has an older key layout")

// v1EventKeyLen is the length of a version 1 event key.
const v1EventKeyLen = subjectPrefixLen + 1 + 8 + 16

// v1SubEvent is the sub-kind of version 1 event keys under a subject.
const v1SubEvent = 'e'

// storedLayout reads the layout version of an open database, marking an
// empty one as the current version.
func storedLayout(db *pebble.DB) (int, error) {
	v, closer, err := db.Get(layoutKey)
	if err == nil {
		defer closer.Close()
		if len(v) != 1 {
			return 0, fmt.Errorf("corrupt layout marker of %d bytes", len(v))
		}
		return int(v[0]), nil
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return 0, fmt.Errorf("read layout marker: %w", err)
	}
	it, err := db.NewIter(nil)
	if err != nil {
		return 0, err
	}
	empty := !it.First()
	if err := it.Close(); err != nil {
		return 0, err
	}
	if !empty {
		return 1, nil
	}
	if err := db.Set(layoutKey, []byte{layoutVersion}, pebble.Sync); err != nil {
		return 0, fmt.Errorf("write layout marker: %w", err)
	}
	return layoutVersion, nil
}

// Migrate rewrites a store in dir from an older key layout to the
// current one, in place, reporting progress to out every few seconds. It
// is safe to interrupt and run again: each batch moves events and
// deletes their old keys atomically, and the version is marked only at
// the end. A store already current is left alone.
func Migrate(dir string, o Options, out io.Writer) error {
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	opts := dbOptions(o)
	db, err := pebble.Open(dir, opts)
	opts.Cache.Unref()
	if err != nil {
		return fmt.Errorf("open store %s: %w", dir, err)
	}
	defer db.Close()
	v, err := storedLayout(db)
	if err != nil {
		return err
	}
	if v == layoutVersion {
		fmt.Fprintf(out, "store %s already has key layout version %d\n", dir, v)
		return nil
	}
	if v != 1 {
		return fmt.Errorf("store %s has key layout version %d, newer than this build's %d", dir, v, layoutVersion)
	}
	fmt.Fprintf(out, "migrating store %s from key layout 1 to %d\n", dir, layoutVersion)
	n, err := migrateV1(db, out)
	if err != nil {
		return fmt.Errorf("migrate store after %d events: %w", n, err)
	}
	if err := db.Set(layoutKey, []byte{layoutVersion}, pebble.Sync); err != nil {
		return fmt.Errorf("write layout marker: %w", err)
	}
	if err := db.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "migrated %d events; the store now has key layout version %d\n", n, layoutVersion)
	return nil
}

// migrateV1 moves every version 1 event key to its day bucket.
func migrateV1(db *pebble.DB, out io.Writer) (int, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixData}, UpperBound: []byte{prefixData + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	b := db.NewBatch()
	defer func() { b.Close() }()
	n, inBatch := 0, 0
	start, last := time.Now(), time.Now()
	var key []byte
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != v1EventKeyLen || k[tenantPrefixLen] != kindSubject || k[subjectPrefixLen] != v1SubEvent {
			continue
		}
		var (
			t   custos.TenantID
			sub custos.SubjectID
			id  custos.MessageHash
		)
		copy(t[:], k[1:tenantPrefixLen])
		copy(sub[:], k[tenantPrefixLen+1:subjectPrefixLen])
		at := decodeTime(k[subjectPrefixLen+1:])
		copy(id[:], k[subjectPrefixLen+9:])
		v, err := it.ValueAndErr()
		if err != nil {
			return n, err
		}
		key = eventKey(key[:0], t, sub, at, id)
		if err := b.Set(key, v, nil); err != nil {
			return n, err
		}
		if err := b.Set(dayIndexKey(key[:0], t, sub, dayOf(at)), nil, nil); err != nil {
			return n, err
		}
		if err := b.Delete(k, nil); err != nil {
			return n, err
		}
		n++
		if inBatch++; inBatch == 10_000 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return n, err
			}
			b.Close()
			b, inBatch = db.NewBatch(), 0
		}
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			fmt.Fprintf(out, "  %d events moved in %s\n", n, time.Since(start).Round(time.Second))
		}
	}
	if err := it.Error(); err != nil {
		return n, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return n, err
	}
	return n, nil
}
