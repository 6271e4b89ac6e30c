package pebble

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable/block"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/custos-dev/custos"
)

// Options configures a Store. The zero value is usable.
type Options struct {
	// CacheSize is the block cache in bytes (default 256 MiB).
	CacheSize int64
	// MemTableSize is the size of one memtable in bytes (default 64 MiB).
	MemTableSize uint64
	// Log receives Pebble's warnings and errors (default: discarded).
	Log *slog.Logger
	// PurgeInterval is the longest wait between a subject's deletion and
	// the purge pass that removes its bytes (default DefaultPurgeInterval;
	// see Purger).
	PurgeInterval time.Duration
	// Now is the clock of the purge schedule (default time.Now).
	Now func() time.Time
	// WALSyncInterval is the least time between two syncs of the
	// write-ahead log (default DefaultWALSyncInterval; negative: none).
	// A commit that asks for a sync sooner waits for it, so more commits
	// share one, and the disk and the CPU do fewer syncs: acknowledgements
	// stay durable.
	WALSyncInterval time.Duration
}

// DefaultWALSyncInterval is the least time between two syncs of the
// write-ahead log by default. Measured on 2 cores (docs/benchmarks-storage.md,
// "The write-ahead log's sync interval"): one event per request at 16
// senders 1.3× faster than without, with lower p50 and p99, and batches a
// little faster.
const DefaultWALSyncInterval = 250 * time.Microsecond

// Store is the Pebble implementation of custos.Store.
type Store struct {
	db         *pebble.DB
	dir        string
	logDepth   int
	auditLocks [16]sync.Mutex
	// outboxMu serialises PutDelivery's read of the previous version with
	// its write, which keeps the due index exact.
	outboxMu sync.Mutex
	// applyMu makes Apply's read of a deleted subject's day buckets and
	// its commit one step, so that no other Apply adds a bucket between
	// them; it guards days.
	applyMu sync.Mutex
	// days are day buckets known to be in subjects' day indexes.
	days   map[subjectRef][]day
	purger purger
	// tenantMu serialises CreateTenant's check with its write, so two
	// creations of one id cannot both succeed.
	tenantMu sync.Mutex
	// sendMu serialises PutSendCapped's count of a subject's send records
	// with its write, so racing sends cannot both pass the cap.
	sendMu sync.Mutex
	// sessionMu makes each session operation's read and write one step
	// (a one-time link is taken once).
	sessionMu sync.Mutex
	// attempts indexes the attempt records (custos.SessionAttempt) by
	// tenant and holder, so that counting one holder's does not read
	// every attempt of the tenant (every client address shares
	// custos.OperatorChain's). Built on first use; guarded by sessionMu.
	attempts *attemptIndex
}

var (
	_ custos.Store          = (*Store)(nil)
	_ custos.EventDayReader = (*Store)(nil)
)

// Open opens or creates the data store in dir.
func Open(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	opts := dbOptions(o)
	db, err := pebble.Open(dir, opts)
	opts.Cache.Unref() // the DB holds its own reference
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	v, err := storedLayout(db)
	if err == nil && v > layoutVersion {
		err = fmt.Errorf("store %s has key layout version %d, newer than this build's %d: run a newer custos", dir, v, layoutVersion)
	} else if err == nil && v != layoutVersion {
		err = fmt.Errorf("%w (version %d; this build reads version %d): stop the server and run `custos migrate --store %s` to rewrite it in place", ErrOldLayout, v, layoutVersion, dir)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	if o.PurgeInterval <= 0 {
		o.PurgeInterval = DefaultPurgeInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{db: db, dir: dir, logDepth: recycledLogs(opts), days: map[subjectRef][]day{},
		purger: purger{interval: o.PurgeInterval, now: o.Now}}, nil
}

func dbOptions(o Options) *pebble.Options {
	if o.CacheSize <= 0 {
		o.CacheSize = 256 << 20
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 64 << 20
	}
	cache := pebble.NewCache(o.CacheSize)
	opts := &pebble.Options{
		FS:                 noReuseFS{vfs.Default},
		Cache:              cache,
		MemTableSize:       o.MemTableSize,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             logger{o.Log},
		// Subjects are spread over the whole key space, so every flush
		// overlaps every level: the LSM is tuned to tolerate a deeper L0
		// and a larger base level, and to compact with up to 3 goroutines,
		// trading some read cost for less write amplification (measured
		// +7% sustained ingest on 2 cores).
		L0CompactionThreshold:       8,
		L0StopWritesThreshold:       64,
		LBaseMaxBytes:               512 << 20,
		MemTableStopWritesThreshold: 4,
		CompactionConcurrencyRange:  func() (int, int) { return 2, 3 },
	}
	for i := range opts.Levels {
		// Values are ciphertext, which does not compress: spend no CPU trying.
		opts.Levels[i].Compression = func() *block.CompressionProfile { return block.NoCompression }
		// Bloom filters make lookups of absent keys (new identifiers, new
		// message ids) cheap.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		// Blocks of 32 KiB rather than 4: each block is one write (and,
		// when compacted, one read) call, and with 4 KiB blocks of
		// ~700-byte events those calls took 17 % of the server's CPU in
		// a profile of batched ingestion at 10 M stored (docs/benchmarks-storage.md).
		opts.Levels[i].BlockSize = 32 << 10
		opts.Levels[i].IndexBlockSize = 256 << 10
	}
	switch wait := o.WALSyncInterval; {
	case wait == 0:
		wait = DefaultWALSyncInterval
		fallthrough
	case wait > 0:
		opts.WALMinSyncInterval = func() time.Duration { return wait }
	}
	opts.EnsureDefaults()
	return opts
}

// Close flushes and closes the store.
func (s *Store) Close() error {
	if err := s.db.Flush(); err != nil {
		s.db.Close()
		return fmt.Errorf("flush store: %w", err)
	}
	return s.db.Close()
}

// Metrics returns Pebble's metrics, for observability.
func (s *Store) Metrics() *pebble.Metrics { return s.db.Metrics() }

type tenantRecord struct {
	ID            custos.TenantID `json:"id"`
	Name          string          `json:"name"`
	Region        string          `json:"region"`
	CreatedAt     time.Time       `json:"created_at"`
	WriteKeyHash  []byte          `json:"write_key_hash"`
	SecretKeyHash []byte          `json:"secret_key_hash"`
	KeysRotatedAt time.Time       `json:"keys_rotated_at,omitzero"`
	Settings      custos.Settings `json:"settings"`
	// RateLimits are the operator's limits for the tenant, if any.
	RateLimits *custos.RateLimits `json:"rate_limits,omitempty"`
	// ConsoleUsers carry password hashes and sealed TOTP secrets.
	ConsoleUsers []custos.ConsoleUser `json:"console_users,omitempty"`
}

func encodeTenant(t *custos.Tenant) ([]byte, error) {
	return json.Marshal(tenantRecord{
		ID: t.ID, Name: t.Name, Region: t.Region, CreatedAt: t.CreatedAt,
		WriteKeyHash: t.WriteKeyHash[:], SecretKeyHash: t.SecretKeyHash[:],
		KeysRotatedAt: t.KeysRotatedAt, Settings: t.Settings, RateLimits: t.RateLimits,
		ConsoleUsers: t.ConsoleUsers,
	})
}

func decodeTenant(b []byte) (*custos.Tenant, error) {
	var r tenantRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode tenant record: %w", err)
	}
	t := &custos.Tenant{ID: r.ID, Name: r.Name, Region: r.Region, CreatedAt: r.CreatedAt, KeysRotatedAt: r.KeysRotatedAt, Settings: r.Settings, RateLimits: r.RateLimits,
		ConsoleUsers: r.ConsoleUsers}
	copy(t.WriteKeyHash[:], r.WriteKeyHash)
	copy(t.SecretKeyHash[:], r.SecretKeyHash)
	return t, nil
}

// CreateTenant stores a new tenant.
func (s *Store) CreateTenant(ctx context.Context, t *custos.Tenant) error {
	s.tenantMu.Lock()
	defer s.tenantMu.Unlock()
	if _, err := s.Tenant(ctx, t.ID); err == nil {
		return custos.Errorf(custos.Conflict, "tenant %s already exists", t.ID)
	} else if !errors.Is(err, custos.ErrNotFound) {
		return err
	}
	return s.putTenant(t)
}

// UpdateTenant replaces an existing tenant.
func (s *Store) UpdateTenant(ctx context.Context, t *custos.Tenant) error {
	if _, err := s.Tenant(ctx, t.ID); err != nil {
		return err
	}
	return s.putTenant(t)
}

func (s *Store) putTenant(t *custos.Tenant) error {
	v, err := encodeTenant(t)
	if err != nil {
		return err
	}
	return s.db.Set(tenantKey(t.ID), v, pebble.Sync)
}

// DeleteTenant removes a tenant record and its whole key range, then
// compacts the range so the bytes leave the live sstables.
func (s *Store) DeleteTenant(ctx context.Context, id custos.TenantID) error {
	if _, err := s.Tenant(ctx, id); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	data := tenantDataPrefix(nil, id)
	if err := b.DeleteRange(data, prefixEnd(data), nil); err != nil {
		return err
	}
	sessions := sessionTenantPrefix(id)
	if err := b.DeleteRange(sessions, prefixEnd(sessions), nil); err != nil {
		return err
	}
	if err := b.Delete(tenantKey(id), nil); err != nil {
		return err
	}
	// The days are read and their deletions committed under applyMu, so
	// that no write adds a day in between.
	s.applyMu.Lock()
	days, err := s.tenantDays(ctx, id)
	for _, d := range days {
		if err == nil {
			k := dayPrefix(nil, id, d)
			err = b.DeleteRange(k, prefixEnd(k), nil)
		}
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	clear(s.days)
	s.applyMu.Unlock()
	if err != nil {
		return fmt.Errorf("delete tenant: %w", err)
	}
	if err := s.db.Compact(ctx, data, prefixEnd(data), true); err != nil {
		return fmt.Errorf("compact deleted tenant: %w", err)
	}
	if err := s.db.Compact(ctx, sessions, prefixEnd(sessions), true); err != nil {
		return fmt.Errorf("compact deleted tenant's sessions: %w", err)
	}
	for _, d := range days {
		k := dayPrefix(nil, id, d)
		if err := s.db.Compact(ctx, k, prefixEnd(k), true); err != nil {
			return fmt.Errorf("compact deleted tenant's events: %w", err)
		}
	}
	return nil
}

// tenantDays returns the days on which the tenant has events, newest
// first.
func (s *Store) tenantDays(ctx context.Context, t custos.TenantID) ([]day, error) {
	return s.tenantDaysFrom(ctx, t, []byte{prefixEvent})
}

// Tenant returns one tenant.
func (s *Store) Tenant(_ context.Context, id custos.TenantID) (*custos.Tenant, error) {
	v, closer, err := s.db.Get(tenantKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, custos.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read tenant: %w", err)
	}
	defer closer.Close()
	return decodeTenant(v)
}

// Tenants returns every tenant ordered by id.
func (s *Store) Tenants(_ context.Context) ([]*custos.Tenant, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixTenant}, UpperBound: []byte{prefixTenant + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var ts []*custos.Tenant
	for it.First(); it.Valid(); it.Next() {
		t, err := decodeTenant(it.Value())
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, it.Error()
}

// Apply applies the writes as one Pebble batch. The WAL sync is awaited
// by wait, so concurrent callers share syncs (group commit).
func (s *Store) Apply(_ context.Context, ws []*custos.Write) (func() error, error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if len(s.days) > maxDayCache {
		clear(s.days)
	}
	// Deleting single events can empty a subject's day, whose index
	// entry must then go too (EventDays lists only days with events).
	// Whether a day is left empty is read through the batch itself, which
	// takes an indexed batch: such writes (retention's) are rare, and
	// ingestion keeps the plain batch.
	var b *pebble.Batch
	var thinned map[bucket]bool // days single deletions took events from
	if slices.ContainsFunc(ws, deletesSingleEvents) {
		b, thinned = s.db.NewIndexedBatch(), map[bucket]bool{}
	} else {
		b = s.db.NewBatch()
	}
	var key []byte
	// Day buckets recorded, and purges queued, by earlier writes of this
	// call: not in the database yet, but a delete later in the call must
	// see them.
	var added, purges map[subjectRef][]day
	for _, w := range ws {
		t := w.Tenant
		for _, sub := range w.DeleteSubjects {
			ref := subjectRef{t, sub}
			if err := s.deleteSubject(b, ref, added[ref], &purges); err != nil {
				b.Close()
				clear(s.days)
				return nil, err
			}
			delete(added, ref)
			delete(s.days, ref)
		}
		expired := day(math.MinInt32) // days before it were dropped whole
		if !w.ExpireBefore.IsZero() {
			var err error
			if expired, err = s.expire(b, t, w.ExpireBefore, func(sub custos.SubjectID, d day) { thinned[bucket{subjectRef{t, sub}, d}] = true }); err != nil {
				b.Close()
				clear(s.days)
				return nil, err
			}
			// The cache may name dropped days, whose index entries go.
			clear(s.days)
		}
		for _, e := range w.DeleteEvents {
			d := dayOf(e.Time)
			if d < expired {
				// Dropped with its whole day: the subject has no event
				// left on that day, so its index entry goes too.
				b.Delete(dayIndexKey(key[:0], t, e.Subject, d), nil)
				continue
			}
			key = eventKey(key[:0], t, e.Subject, e.Time, e.ID)
			b.Delete(key, nil)
			thinned[bucket{subjectRef{t, e.Subject}, d}] = true
		}
		for _, h := range w.Unlinks {
			key = indexKey(key[:0], t, h)
			b.Delete(key, nil)
		}
		for _, id := range w.Unsee {
			key = seenKey(key[:0], t, id)
			b.Delete(key, nil)
		}
		for _, e := range w.Events {
			key = eventKey(key[:0], t, e.Subject, e.Time, e.ID)
			b.Set(key, e.Value, nil)
			ref, d := subjectRef{t, e.Subject}, dayOf(e.Time)
			if !slices.Contains(s.days[ref], d) {
				// The subject's day index learns the bucket once, not at
				// every event: the cache remembers what is recorded.
				b.Set(dayIndexKey(key[:0], t, e.Subject, d), nil, nil)
				s.days[ref] = append(s.days[ref], d)
				if added == nil {
					added = map[subjectRef][]day{}
				}
				added[ref] = append(added[ref], d)
			}
		}
		for _, c := range w.Consents {
			key = consentKey(key[:0], t, c.Subject, c.Time, c.Seq)
			b.Set(key, c.Value, nil)
		}
		for _, sd := range w.Sends {
			if sd.Campaign == "" {
				b.Close()
				clear(s.days)
				return nil, custos.Errorf(custos.Invalid, "send record has no campaign")
			}
			b.Set(sendKey(t, sd.Subject, sd.Time, sd.Campaign), sd.Value, nil)
		}
		for _, p := range w.Profiles {
			key = profileKey(key[:0], t, p.Subject)
			b.Set(key, p.Value, nil)
		}
		for _, l := range w.Links {
			key = indexKey(key[:0], t, l.Hash)
			b.Set(key, l.Subject[:], nil)
		}
		for _, f := range w.Flags {
			key = flagsKey(key[:0], t, f.Subject)
			if f.Flags == (custos.SubjectFlags{}) {
				b.Delete(key, nil)
				continue
			}
			v, err := json.Marshal(f.Flags)
			if err != nil {
				b.Close()
				clear(s.days)
				return nil, err
			}
			b.Set(key, v, nil)
		}
		for _, ts := range w.Tombstones {
			v, err := json.Marshal(ts.Tombstone)
			if err != nil {
				b.Close()
				clear(s.days)
				return nil, err
			}
			b.Set(tombstoneKey(key[:0], t, ts.Hash), v, nil)
		}
		for _, sn := range w.Seen {
			key = seenKey(key[:0], t, sn.ID)
			v := append(sn.Subject[:], make([]byte, 0, 8)...)
			b.Set(key, sortableTime(v, sn.Time), nil)
		}
		for _, m := range w.Merges {
			b.Set(mergedKey(t, m.From), m.Into[:], nil)
		}
		if w.Observed != nil {
			b.Set(tenantRecordKey(t, kindObserved), w.Observed, nil)
		}
		if w.Retention != nil {
			b.Set(tenantRecordKey(t, kindRetention), w.Retention, nil)
		}
	}
	if err := s.dropEmptiedDays(b, thinned); err != nil {
		b.Close()
		clear(s.days)
		return nil, err
	}
	if b.Empty() {
		b.Close()
		return func() error { return nil }, nil
	}
	if err := s.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		b.Close()
		clear(s.days)
		return nil, fmt.Errorf("apply batch: %w", err)
	}
	return func() error {
		err := b.SyncWait()
		b.Close()
		if err != nil {
			return fmt.Errorf("sync batch: %w", err)
		}
		return nil
	}, nil
}

func (s *Store) get(key []byte, fn func([]byte) error) error {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return custos.ErrNotFound
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	return fn(v)
}

// Subject returns the subject an identifier hash points at.
func (s *Store) Subject(_ context.Context, t custos.TenantID, h custos.IdentifierHash) (custos.SubjectID, error) {
	var sub custos.SubjectID
	var buf [tenantPrefixLen + 1 + 32]byte
	err := s.get(indexKey(buf[:0], t, h), func(v []byte) error {
		if len(v) != len(sub) {
			return fmt.Errorf("corrupt index entry: %d bytes", len(v))
		}
		copy(sub[:], v)
		return nil
	})
	return sub, err
}

// Subjects returns the subjects the identifier hashes point at: a read
// of the index per hash, which costs no round trip here.
func (s *Store) Subjects(ctx context.Context, t custos.TenantID, hs []custos.IdentifierHash) (map[custos.IdentifierHash]custos.SubjectID, error) {
	out := make(map[custos.IdentifierHash]custos.SubjectID, len(hs))
	for _, h := range hs {
		sub, err := s.Subject(ctx, t, h)
		if errors.Is(err, custos.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[h] = sub
	}
	return out, nil
}

// Seen returns the deduplication record of a message.
func (s *Store) Seen(_ context.Context, t custos.TenantID, id custos.MessageHash) (custos.Seen, error) {
	sn := custos.Seen{ID: id}
	var buf [tenantPrefixLen + 1 + 16]byte
	err := s.get(seenKey(buf[:0], t, id), func(v []byte) error {
		if len(v) != 16+8 {
			return fmt.Errorf("corrupt dedupe entry: %d bytes", len(v))
		}
		copy(sn.Subject[:], v)
		sn.Time = decodeTime(v[16:])
		return nil
	})
	return sn, err
}

// Profile returns the sealed profile of a subject.
func (s *Store) Profile(_ context.Context, t custos.TenantID, sub custos.SubjectID) ([]byte, error) {
	var out []byte
	err := s.get(profileKey(nil, t, sub), func(v []byte) error {
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// Profiles returns the sealed profiles of the subjects that have one.
func (s *Store) Profiles(ctx context.Context, t custos.TenantID, ss []custos.SubjectID) (map[custos.SubjectID][]byte, error) {
	out := make(map[custos.SubjectID][]byte, len(ss))
	for _, sub := range ss {
		v, err := s.Profile(ctx, t, sub)
		if errors.Is(err, custos.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[sub] = v
	}
	return out, nil
}

// Observed returns the tenant's sealed record of observed data categories.
func (s *Store) Observed(_ context.Context, t custos.TenantID) ([]byte, error) {
	return s.tenantRecord(t, kindObserved)
}

// RetentionProgress returns the tenant's retention sweep progress.
func (s *Store) RetentionProgress(_ context.Context, t custos.TenantID) ([]byte, error) {
	return s.tenantRecord(t, kindRetention)
}

func (s *Store) tenantRecord(t custos.TenantID, kind byte) ([]byte, error) {
	var out []byte
	err := s.get(tenantRecordKey(t, kind), func(v []byte) error {
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// subjectWalk opens an iterator over a tenant's subject records and
// positions it on the first key of the first subject after after (zero:
// the first subject); ok is false when there is none.
func (s *Store) subjectWalk(ctx context.Context, t custos.TenantID, after custos.SubjectID) (it *pebble.Iterator, ok bool, err error) {
	lower := append(tenantDataPrefix(nil, t), kindSubject)
	it, err = s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return nil, false, err
	}
	if after == (custos.SubjectID{}) {
		return it, it.First(), nil
	}
	return it, it.SeekGE(prefixEnd(subjectPrefix(nil, t, after))), nil
}

// EachProfile calls fn for every profile of the tenant, by subject id.
// The walk seeks from subject to subject, straight to each profile key,
// instead of reading the consent records and day index around it.
func (s *Store) EachProfile(ctx context.Context, t custos.TenantID, after custos.SubjectID, fn func(custos.StoredProfile) (bool, error)) error {
	it, ok, err := s.subjectWalk(ctx, t, after)
	if err != nil {
		return err
	}
	defer it.Close()
	for ok {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := it.Key()
		if len(k) < subjectPrefixLen {
			return fmt.Errorf("corrupt subject key of %d bytes", len(k))
		}
		var sub custos.SubjectID
		copy(sub[:], k[tenantPrefixLen+1:subjectPrefixLen])
		pk := profileKey(nil, t, sub)
		if it.SeekGE(pk) && bytes.Equal(it.Key(), pk) {
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			more, err := fn(custos.StoredProfile{Subject: sub, Value: append([]byte(nil), v...)})
			if err != nil || !more {
				return err
			}
		}
		ok = it.SeekGE(prefixEnd(subjectPrefix(nil, t, sub)))
	}
	return it.Error()
}

func mergedKey(t custos.TenantID, s custos.SubjectID) []byte {
	k := append(tenantDataPrefix(nil, t), kindMerged)
	return append(k, s[:]...)
}

// MergedInto returns the subject s was merged into.
func (s *Store) MergedInto(_ context.Context, t custos.TenantID, sub custos.SubjectID) (custos.SubjectID, error) {
	var into custos.SubjectID
	err := s.get(mergedKey(t, sub), func(v []byte) error {
		if len(v) != len(into) {
			return fmt.Errorf("corrupt merge record of %d bytes", len(v))
		}
		copy(into[:], v)
		return nil
	})
	return into, err
}

// logger forwards Pebble's warnings and errors to slog and drops its
// routine chatter.
type logger struct{ log *slog.Logger }

func (l logger) Infof(string, ...any) {}
func (l logger) Errorf(format string, args ...any) {
	if l.log != nil {
		l.log.Error("pebble", "msg", fmt.Sprintf(format, args...))
	}
}
func (l logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if l.log != nil {
		l.log.Error("pebble fatal", "msg", msg)
	}
	panic(msg)
}

// EachSeen calls fn for every deduplication record of every tenant.
func (s *Store) EachSeen(ctx context.Context, fn func(custos.TenantID, custos.Seen) error) error {
	return s.eachOfKind(ctx, kindSeen, func(t custos.TenantID, rest, v []byte) error {
		if len(rest) != 16 || len(v) != 16+8 {
			return fmt.Errorf("corrupt dedupe record")
		}
		sn := custos.Seen{Time: decodeTime(v[16:])}
		copy(sn.ID[:], rest)
		copy(sn.Subject[:], v)
		return fn(t, sn)
	})
}

// CompactAll flushes the memtable and compacts the whole store, so that
// every live key is in sstables and deleted ones are gone (for tests and
// maintenance).
func (s *Store) CompactAll(ctx context.Context) error {
	if err := s.db.Flush(); err != nil {
		return err
	}
	return s.db.Compact(ctx, []byte{0x00}, []byte{0xff}, true)
}
