package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable/block"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/custos-dev/custos"
)

// KeyStore is a custos.KeyStore in its own Pebble database, apart from the
// data so that keys and data are backed up separately.
//
// Layout (ids are binary):
//
//	m/<name>                          meta record
//	t/<tenant id, 16 bytes>           wrapped tenant key
//	s/<tenant id><subject id>         wrapped subject key, or the shredded marker
//	p/<key>                           key was shredded or deleted: purge it
//
// Shredding overwrites a subject key with a one-byte marker. Overwriting
// only hides the old bytes inside Pebble's files, so a background purge
// (see Purge) compacts the affected key range soon after, rewriting the
// files without them.
type KeyStore struct {
	db       *pebble.DB
	dir      string
	logDepth int

	// mu guards closed; every operation holds it for reading so that
	// Close never races a Pebble call (Pebble panics on a closed DB).
	mu        sync.RWMutex
	closed    bool
	closeOnce sync.Once

	// stripes serialise the read-check-write of PutSubjectKey with
	// ShredSubjectKey for the same subject, so a shredded key can never be
	// overwritten by a late put.
	stripes [64]sync.Mutex

	purgeMu      sync.Mutex // one Purge at a time
	purgeKick    chan struct{}
	purgeStop    chan struct{}
	purgeStopped chan struct{}
	purgeDelay   time.Duration
}

var _ custos.KeyStore = (*KeyStore)(nil)

const (
	ksPrefixMeta    = "m/"
	ksPrefixTenant  = "t/"
	ksPrefixSubject = "s/"
	ksPrefixPurge   = "p/"      // p/<key>: key was hidden; purge its old bytes
	ksPurgeMarker   = "x/purge" // written only to start new logs during a purge

	// ksShredded replaces a shredded subject key. A wrapped key is never
	// this short, so the marker cannot be mistaken for one.
	ksShredded = 0x00

	// ksPurgeDelay bounds how long the bytes of a shredded or deleted key
	// stay in live files; shreds arriving within it share one compaction.
	ksPurgeDelay = time.Second
)

// OpenKeyStore opens (creating if needed, mode 0700) the key store in dir.
func OpenKeyStore(dir string) (*KeyStore, error) {
	return ksOpen(dir, ksPurgeDelay)
}

func ksOpen(dir string, purgeDelay time.Duration) (*KeyStore, error) {
	if dir == "" {
		return nil, errors.New("open key store: no directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	// Wrapped keys are random bytes: no compression; a block cache big
	// enough that a million subjects' keys (about 100 MB) stay in memory;
	// Bloom filters for the lookups of keys that do not exist yet.
	cache := pebble.NewCache(128 << 20)
	defer cache.Unref()
	opts := &pebble.Options{
		FS:                 noReuseFS{vfs.Default},
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             ksLogger{},
		Cache:              cache,
	}
	for i := range opts.Levels {
		opts.Levels[i].Compression = func() *block.CompressionProfile { return block.NoCompression }
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	opts.EnsureDefaults()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open key store %s: %w", dir, err)
	}
	ks := &KeyStore{
		db:           db,
		dir:          dir,
		logDepth:     recycledLogs(opts),
		purgeKick:    make(chan struct{}, 1),
		purgeStop:    make(chan struct{}),
		purgeStopped: make(chan struct{}),
		purgeDelay:   purgeDelay,
	}
	go ks.purgeLoop()
	ks.kickPurge() // finish purges a crash interrupted
	return ks, nil
}

// ksLogger drops Pebble's informational chatter and keeps its errors.
type ksLogger struct{}

func (ksLogger) Infof(string, ...any) {}
func (ksLogger) Errorf(format string, args ...any) {
	pebble.DefaultLogger.Errorf(format, args...)
}
func (ksLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf(format, args...)
}

var ksErrClosed = &custos.Error{Code: custos.Unavailable, Message: "key store is closed"}

// read runs fn unless the store is closed.
func (ks *KeyStore) read(fn func() error) error {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	if ks.closed {
		return ksErrClosed
	}
	return fn()
}

func ksMetaKey(name string) []byte { return append([]byte(ksPrefixMeta), name...) }

func ksTenantKey(t custos.TenantID) []byte {
	return append([]byte(ksPrefixTenant), t[:]...)
}

func ksSubjectKey(t custos.TenantID, s custos.SubjectID) []byte {
	k := make([]byte, 0, len(ksPrefixSubject)+len(t)+len(s))
	k = append(k, ksPrefixSubject...)
	k = append(k, t[:]...)
	return append(k, s[:]...)
}

// ksPrefixEnd returns the smallest key greater than every key starting
// with prefix.
func ksPrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // prefix is all 0xff: no upper bound
}

// ksGet returns a copy of the value at key, or custos.ErrNotFound.
func (ks *KeyStore) ksGet(key []byte) ([]byte, error) {
	v, closer, err := ks.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, custos.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	v = bytes.Clone(v)
	return v, closer.Close()
}

// Meta returns the meta record name, or custos.ErrNotFound.
func (ks *KeyStore) Meta(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := ks.read(func() (err error) {
		v, err = ks.ksGet(ksMetaKey(name))
		return err
	})
	if err != nil && err != custos.ErrNotFound && err != ksErrClosed {
		return nil, fmt.Errorf("key store: meta %q: %w", name, err)
	}
	return v, err
}

// TenantKeys returns every wrapped tenant key.
func (ks *KeyStore) TenantKeys(ctx context.Context) (map[custos.TenantID][]byte, error) {
	keys := make(map[custos.TenantID][]byte)
	err := ks.read(func() error {
		it, err := ks.db.NewIterWithContext(ctx, &pebble.IterOptions{
			LowerBound: []byte(ksPrefixTenant),
			UpperBound: ksPrefixEnd([]byte(ksPrefixTenant)),
		})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			k := it.Key()
			var t custos.TenantID
			if len(k) != len(ksPrefixTenant)+len(t) {
				it.Close()
				return fmt.Errorf("malformed tenant key %x", k)
			}
			copy(t[:], k[len(ksPrefixTenant):])
			v, err := it.ValueAndErr()
			if err != nil {
				it.Close()
				return err
			}
			keys[t] = bytes.Clone(v)
		}
		return it.Close()
	})
	if err == ksErrClosed {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("key store: tenant keys: %w", err)
	}
	return keys, nil
}

// PutTenantKeys stores wrapped tenant keys and meta records in one
// synced batch: all of them or none survive a crash.
func (ks *KeyStore) PutTenantKeys(ctx context.Context, keys map[custos.TenantID][]byte, meta map[string][]byte) error {
	if len(keys) == 0 && len(meta) == 0 {
		return nil
	}
	for name := range meta {
		if name == "" {
			return &custos.Error{Code: custos.Internal, Message: "key store: empty meta record name"}
		}
	}
	err := ks.read(func() error {
		b := ks.db.NewBatch()
		defer b.Close()
		for t, v := range keys {
			if err := b.Set(ksTenantKey(t), v, nil); err != nil {
				return err
			}
		}
		for name, v := range meta {
			if err := b.Set(ksMetaKey(name), v, nil); err != nil {
				return err
			}
		}
		return b.Commit(pebble.Sync)
	})
	if err != nil && err != ksErrClosed {
		return fmt.Errorf("key store: put tenant keys: %w", err)
	}
	return err
}

// DeleteTenantKey destroys a tenant key durably, and with it every subject
// key of the tenant (useless without the tenant key that wraps them).
func (ks *KeyStore) DeleteTenantKey(ctx context.Context, t custos.TenantID) error {
	tk := ksTenantKey(t)
	lo := append([]byte(ksPrefixSubject), t[:]...)
	hi := ksPrefixEnd(lo)
	err := ks.read(func() error {
		b := ks.db.NewBatch()
		defer b.Close()
		if err := b.Delete(tk, nil); err != nil {
			return err
		}
		if err := b.DeleteRange(lo, hi, nil); err != nil {
			return err
		}
		for _, k := range [][]byte{tk, lo, hi} {
			if err := b.Set(ksPurgeRecord(k), nil, nil); err != nil {
				return err
			}
		}
		return b.Commit(pebble.Sync)
	})
	if err != nil && err != ksErrClosed {
		return fmt.Errorf("key store: delete tenant key %s: %w", t, err)
	}
	if err == nil {
		ks.kickPurge()
	}
	return err
}

// SubjectKey returns a wrapped subject key, custos.ErrNotFound if there
// never was one, or custos.ErrShredded if it was destroyed.
func (ks *KeyStore) SubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID) ([]byte, error) {
	var v []byte
	err := ks.read(func() (err error) {
		v, err = ks.ksGet(ksSubjectKey(t, s))
		return err
	})
	switch {
	case err == custos.ErrNotFound || err == ksErrClosed:
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("key store: subject key %s/%s: %w", t, s, err)
	case ksIsShredded(v):
		return nil, custos.ErrShredded
	}
	return v, nil
}

// SubjectKeys calls fn for the tenant's live subject keys from from to
// to, in subject order.
func (ks *KeyStore) SubjectKeys(ctx context.Context, t custos.TenantID, from, to custos.SubjectID, fn func(custos.SubjectID, []byte) (bool, error)) error {
	return ks.read(func() error {
		it, err := ks.db.NewIterWithContext(ctx, &pebble.IterOptions{
			LowerBound: ksSubjectKey(t, from),
			UpperBound: append(ksSubjectKey(t, to), 0),
		})
		if err != nil {
			return err
		}
		defer it.Close()
		head := len(ksPrefixSubject) + len(t)
		for it.First(); it.Valid(); it.Next() {
			k := it.Key()
			var s custos.SubjectID
			if len(k) != head+len(s) {
				return fmt.Errorf("key store: malformed subject key %x", k)
			}
			copy(s[:], k[head:])
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			if ksIsShredded(v) {
				continue
			}
			more, err := fn(s, bytes.Clone(v))
			if err != nil || !more {
				return err
			}
		}
		return it.Error()
	})
}

func ksIsShredded(v []byte) bool { return len(v) == 1 && v[0] == ksShredded }

func (ks *KeyStore) stripe(s custos.SubjectID) *sync.Mutex {
	return &ks.stripes[int(s[0]^s[15])%len(ks.stripes)]
}

// PutSubjectKey stores a wrapped subject key and returns once it is
// applied (visible to reads); wait blocks until it is synced. Concurrent
// callers share WAL syncs. Wait may be called more than once; it must be
// called at least once so the batch is released.
//
// A shredded key is never replaced: PutSubjectKey answers
// custos.ErrShredded, so a late write cannot bring a subject back.
func (ks *KeyStore) PutSubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID, wrapped []byte) (wait func() error, err error) {
	if len(wrapped) < 2 {
		return nil, &custos.Error{Code: custos.Internal, Message: "key store: wrapped subject key too short"}
	}
	key := ksSubjectKey(t, s)
	var b *pebble.Batch
	err = ks.read(func() error {
		mu := ks.stripe(s)
		mu.Lock()
		defer mu.Unlock()
		old, err := ks.ksGet(key)
		switch {
		case err == nil && ksIsShredded(old):
			return custos.ErrShredded
		case err != nil && err != custos.ErrNotFound:
			return err
		}
		b = ks.db.NewBatch()
		if err := b.Set(key, wrapped, nil); err != nil {
			b.Close()
			return err
		}
		if err := ks.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
			b.Close()
			return err
		}
		return nil
	})
	switch {
	case err == custos.ErrShredded || err == ksErrClosed:
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("key store: put subject key %s/%s: %w", t, s, err)
	}
	return sync.OnceValue(func() error {
		err := b.SyncWait()
		b.Close()
		if err != nil {
			return fmt.Errorf("key store: sync subject key %s/%s: %w", t, s, err)
		}
		return nil
	}), nil
}

// ShredSubjectKey replaces a subject key by the shredded marker, durably,
// whether or not a key existed, and schedules the purge of the old bytes.
func (ks *KeyStore) ShredSubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID) error {
	key := ksSubjectKey(t, s)
	var b *pebble.Batch
	err := ks.read(func() error {
		mu := ks.stripe(s)
		mu.Lock()
		defer mu.Unlock()
		b = ks.db.NewBatch()
		if err := b.Set(key, []byte{ksShredded}, nil); err != nil {
			b.Close()
			return err
		}
		if err := b.Set(ksPurgeRecord(key), nil, nil); err != nil {
			b.Close()
			return err
		}
		// The marker is visible once applied, so a racing PutSubjectKey is
		// refused from here on; the sync happens outside the stripe lock.
		if err := ks.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
			b.Close()
			return err
		}
		return nil
	})
	if err == nil {
		err = b.SyncWait()
		b.Close()
	}
	switch {
	case err == ksErrClosed:
		return err
	case err != nil:
		return fmt.Errorf("key store: shred subject key %s/%s: %w", t, s, err)
	}
	ks.kickPurge()
	return nil
}

// Purge rewrites the storage files that may still hold the bytes of keys
// shredded or deleted so far, so that they are gone from live files (not
// merely hidden) and from any backup or checkpoint taken afterwards. It
// runs by itself within about a second of a shred, and at Open for shreds
// a crash interrupted; call it to wait for it.
//
// Freed disk blocks, and write-ahead log files that Pebble keeps for reuse,
// may hold the old bytes until they are overwritten.
func (ks *KeyStore) Purge(ctx context.Context) error {
	ks.purgeMu.Lock() // one purge at a time
	defer ks.purgeMu.Unlock()
	err := ks.read(func() error {
		pending, lo, hi, err := ks.pendingPurges(ctx)
		if err != nil || len(pending) == 0 {
			return err
		}
		// Compact's end is exclusive.
		if err := ks.db.Compact(ctx, lo, append(hi, 0), false); err != nil {
			return err
		}
		// Old logs hold the destroyed keys too.
		if err := cycleLogs(ks.db, vfs.Default, ks.dir, ks.logDepth, []byte(ksPurgeMarker)); err != nil {
			return err
		}
		b := ks.db.NewBatch()
		defer b.Close()
		for _, k := range pending {
			if err := b.Delete(k, nil); err != nil {
				return err
			}
		}
		// Losing these deletes in a crash only repeats the compaction.
		return b.Commit(pebble.NoSync)
	})
	if err != nil && err != ksErrClosed {
		return fmt.Errorf("key store: purge: %w", err)
	}
	return err
}

// pendingPurges returns the purge records and the range of keys they name.
func (ks *KeyStore) pendingPurges(ctx context.Context) (pending [][]byte, lo, hi []byte, err error) {
	it, err := ks.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: []byte(ksPrefixPurge),
		UpperBound: ksPrefixEnd([]byte(ksPrefixPurge)),
	})
	if err != nil {
		return nil, nil, nil, err
	}
	for it.First(); it.Valid(); it.Next() {
		k := bytes.Clone(it.Key())
		target := k[len(ksPrefixPurge):]
		if lo == nil || bytes.Compare(target, lo) < 0 {
			lo = target
		}
		if hi == nil || bytes.Compare(target, hi) > 0 {
			hi = target
		}
		pending = append(pending, k)
	}
	return pending, lo, hi, it.Close()
}

// ksPurgeRecord is the record that asks for key to be purged. It is
// written in the same batch as the change that hides key, so a crash
// cannot lose it.
func ksPurgeRecord(key []byte) []byte {
	return append([]byte(ksPrefixPurge), key...)
}

func (ks *KeyStore) kickPurge() {
	select {
	case ks.purgeKick <- struct{}{}:
	default:
	}
}

func (ks *KeyStore) purgeLoop() {
	defer close(ks.purgeStopped)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-ks.purgeStop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-ks.purgeStop:
			return
		case <-ks.purgeKick:
		}
		select {
		case <-ks.purgeStop:
			return
		case <-time.After(ks.purgeDelay):
		}
		if err := ks.Purge(ctx); err != nil && ctx.Err() == nil {
			pebble.DefaultLogger.Errorf("custos: %v", err)
		}
	}
}

// Close finishes pending purges and closes the database. It is safe to
// call more than once.
func (ks *KeyStore) Close() error {
	var err error
	ks.closeOnce.Do(func() {
		close(ks.purgeStop)
		<-ks.purgeStopped
		// Purge now rather than leave it to the next Open.
		err = ks.Purge(context.Background())
		ks.mu.Lock()
		ks.closed = true
		ks.mu.Unlock()
		if cerr := ks.db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close key store: %w", cerr)
		}
	})
	return err
}
