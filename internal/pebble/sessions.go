package pebble

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/custos-dev/custos"
)

// Sessions live under a prefix of their own, by tenant, so that the
// expiry sweep reads them all in one range and deleting a tenant drops
// its range; a console user's last TOTP step lives in the tenant's data:
//
//	0x07 <tenant> <kind length> <kind> <token hash>   session JSON
//	0x02 <tenant> 'u' <user name>                     last TOTP step, 8 bytes
const (
	prefixSession = 0x07
	kindTOTPStep  = 'u'
)

var _ custos.SessionStore = (*Store)(nil)

func sessionTenantPrefix(t custos.TenantID) []byte {
	return append([]byte{prefixSession}, t[:]...)
}

func sessionKindPrefix(t custos.TenantID, kind string) []byte {
	return append(append(sessionTenantPrefix(t), byte(len(kind))), kind...)
}

func sessionKey(t custos.TenantID, kind string, hash [32]byte) []byte {
	return append(sessionKindPrefix(t, kind), hash[:]...)
}

// sessionRecord is a Session as stored, without what its key holds.
type sessionRecord struct {
	Holder  string    `json:"holder,omitempty"`
	User    string    `json:"user,omitempty"`
	How     string    `json:"how,omitempty"`
	IP      string    `json:"ip,omitempty"`
	Agent   string    `json:"agent,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Sealed  []byte    `json:"sealed,omitempty"`
}

func encodeSession(s *custos.Session) ([]byte, error) {
	v, err := json.Marshal(sessionRecord{Holder: s.Holder, User: s.User, How: s.How, IP: s.IP, Agent: s.Agent,
		Created: s.Created.UTC(), Expires: s.Expires.UTC(), Sealed: s.Sealed})
	if err != nil {
		return nil, fmt.Errorf("encode session: %w", err)
	}
	return v, nil
}

func decodeSession(t custos.TenantID, kind string, hash []byte, v []byte) (*custos.Session, error) {
	var r sessionRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("decode session: %w", err)
	}
	s := &custos.Session{Tenant: t, Kind: kind, Holder: r.Holder, User: r.User, How: r.How, IP: r.IP, Agent: r.Agent,
		Created: r.Created, Expires: r.Expires, Sealed: r.Sealed}
	copy(s.Hash[:], hash)
	return s, nil
}

func validKind(kind string) error {
	if kind == "" || len(kind) > 255 {
		return custos.Errorf(custos.Invalid, "session kind must be 1 to 255 bytes")
	}
	return nil
}

// CreateSession stores a new session durably; Conflict if it exists.
func (s *Store) CreateSession(_ context.Context, ss *custos.Session) error {
	if err := validKind(ss.Kind); err != nil {
		return err
	}
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	return s.createSession(ss)
}

// CreateSessionBelow stores a new session if its holder has fewer than
// limit live ones of its kind; the count and the write are made under
// sessionMu, so racing callers pass the limit in turn.
func (s *Store) CreateSessionBelow(ctx context.Context, ss *custos.Session, limit int, now time.Time) (bool, error) {
	if err := validKind(ss.Kind); err != nil {
		return false, err
	}
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	n, err := s.countHolder(ctx, ss.Tenant, ss.Kind, ss.Holder, now)
	if err != nil || n >= limit {
		return false, err
	}
	return true, s.createSession(ss)
}

// attemptIndex holds, per tenant and holder, the expiry of each attempt
// record. An entry whose record another path deleted (a tenant's
// deletion) outlives it at most until its expiry: attempts are counted
// only while live, and expired entries are dropped.
type attemptIndex struct {
	holders map[attemptRef]map[[32]byte]time.Time
}

type attemptRef struct {
	t      custos.TenantID
	holder string
}

// attemptIndex returns the index of attempt records, building it from
// the store on first use. The caller holds sessionMu.
func (s *Store) attemptIndex(ctx context.Context) (*attemptIndex, error) {
	if s.attempts != nil {
		return s.attempts, nil
	}
	idx := &attemptIndex{holders: map[attemptRef]map[[32]byte]time.Time{}}
	err := s.eachSession(ctx, []byte{prefixSession}, func(_ []byte, ss *custos.Session) error {
		if ss.Kind == custos.SessionAttempt {
			idx.add(ss)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read attempt records: %w", err)
	}
	s.attempts = idx
	return idx, nil
}

func (idx *attemptIndex) add(ss *custos.Session) {
	ref := attemptRef{ss.Tenant, ss.Holder}
	if idx.holders[ref] == nil {
		idx.holders[ref] = map[[32]byte]time.Time{}
	}
	idx.holders[ref][ss.Hash] = ss.Expires
}

// live counts a holder's live attempts at now, dropping expired ones.
func (idx *attemptIndex) live(ref attemptRef, now time.Time) int {
	hs := idx.holders[ref]
	for h, exp := range hs {
		if now.After(exp) {
			delete(hs, h)
		}
	}
	if len(hs) == 0 {
		delete(idx.holders, ref)
	}
	return len(hs)
}

// forget drops one record's entry.
func (idx *attemptIndex) forget(ref attemptRef, hash [32]byte) {
	delete(idx.holders[ref], hash)
	if len(idx.holders[ref]) == 0 {
		delete(idx.holders, ref)
	}
}

// prune drops every expired entry.
func (idx *attemptIndex) prune(now time.Time) {
	for ref := range idx.holders {
		idx.live(ref, now)
	}
}

// createSession stores a new session; the caller holds sessionMu.
func (s *Store) createSession(ss *custos.Session) error {
	v, err := encodeSession(ss)
	if err != nil {
		return err
	}
	key := sessionKey(ss.Tenant, ss.Kind, ss.Hash)
	switch err := s.get(key, func([]byte) error { return nil }); {
	case err == nil:
		return custos.Errorf(custos.Conflict, "the session exists")
	case !errors.Is(err, custos.ErrNotFound):
		return fmt.Errorf("read session: %w", err)
	}
	if err := s.db.Set(key, v, pebble.Sync); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	if ss.Kind == custos.SessionAttempt && s.attempts != nil {
		s.attempts.add(ss)
	}
	return nil
}

// liveSession reads a session under sessionMu, deleting it if expired.
func (s *Store) liveSession(t custos.TenantID, kind string, hash [32]byte, now time.Time) (*custos.Session, []byte, error) {
	key := sessionKey(t, kind, hash)
	var ss *custos.Session
	err := s.get(key, func(v []byte) error {
		var err error
		ss, err = decodeSession(t, kind, hash[:], v)
		return err
	})
	if err != nil {
		return nil, key, err
	}
	if !ss.Live(now) {
		if err := s.db.Delete(key, pebble.NoSync); err != nil {
			return nil, key, fmt.Errorf("delete expired session: %w", err)
		}
		return nil, key, custos.ErrNotFound
	}
	return ss, key, nil
}

// Session returns a live session.
func (s *Store) Session(_ context.Context, t custos.TenantID, kind string, hash [32]byte, now time.Time) (*custos.Session, error) {
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	ss, _, err := s.liveSession(t, kind, hash, now)
	return ss, err
}

// UpdateSession replaces the sealed part of a live session durably.
func (s *Store) UpdateSession(_ context.Context, t custos.TenantID, kind string, hash [32]byte, sealed []byte, now time.Time) error {
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	ss, key, err := s.liveSession(t, kind, hash, now)
	if err != nil {
		return err
	}
	ss.Sealed = sealed
	v, err := encodeSession(ss)
	if err != nil {
		return err
	}
	if err := s.db.Set(key, v, pebble.Sync); err != nil {
		return fmt.Errorf("update session: %w", err)
	}
	return nil
}

// TakeSession deletes a session durably and returns it if it was live.
func (s *Store) TakeSession(_ context.Context, t custos.TenantID, kind string, hash [32]byte, now time.Time) (*custos.Session, error) {
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	ss, key, err := s.liveSession(t, kind, hash, now)
	if err != nil {
		return nil, err
	}
	if err := s.db.Delete(key, pebble.Sync); err != nil {
		return nil, fmt.Errorf("take session: %w", err)
	}
	if kind == custos.SessionAttempt && s.attempts != nil {
		s.attempts.forget(attemptRef{t, ss.Holder}, hash)
	}
	return ss, nil
}

// DeleteSession ends a session durably.
func (s *Store) DeleteSession(_ context.Context, t custos.TenantID, kind string, hash [32]byte) error {
	key := sessionKey(t, kind, hash)
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	var holder string
	if err := s.get(key, func(v []byte) error {
		if kind != custos.SessionAttempt {
			return nil
		}
		ss, err := decodeSession(t, kind, hash[:], v)
		if err != nil {
			return err
		}
		holder = ss.Holder
		return nil
	}); err != nil {
		return err
	}
	if err := s.db.Delete(key, pebble.Sync); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	if kind == custos.SessionAttempt && s.attempts != nil {
		s.attempts.forget(attemptRef{t, holder}, hash)
	}
	return nil
}

// eachSession calls fn for every session under prefix, with its key.
func (s *Store) eachSession(ctx context.Context, prefix []byte, fn func(key []byte, ss *custos.Session) error) error {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) < 1+16+1+32 || int(k[17]) != len(k)-1-16-1-32 {
			return fmt.Errorf("corrupt session key of %d bytes", len(k))
		}
		var t custos.TenantID
		copy(t[:], k[1:17])
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		ss, err := decodeSession(t, string(k[18:len(k)-32]), k[len(k)-32:], v)
		if err != nil {
			return err
		}
		if err := fn(bytes.Clone(k), ss); err != nil {
			return err
		}
	}
	return it.Error()
}

// DeleteHolderSessions ends every session of one kind and holder durably.
func (s *Store) DeleteHolderSessions(ctx context.Context, t custos.TenantID, kind, holder string) (int, error) {
	if err := validKind(kind); err != nil {
		return 0, err
	}
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	err := s.eachSession(ctx, sessionKindPrefix(t, kind), func(key []byte, ss *custos.Session) error {
		if ss.Holder != holder {
			return nil
		}
		return b.Delete(key, nil)
	})
	if err != nil {
		return 0, fmt.Errorf("read sessions: %w", err)
	}
	n := int(b.Count())
	if n == 0 {
		return 0, nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("delete sessions: %w", err)
	}
	if kind == custos.SessionAttempt && s.attempts != nil {
		delete(s.attempts.holders, attemptRef{t, holder})
	}
	return n, nil
}

// CountHolderSessions counts the live sessions of one kind and holder.
func (s *Store) CountHolderSessions(ctx context.Context, t custos.TenantID, kind, holder string, now time.Time) (int, error) {
	if err := validKind(kind); err != nil {
		return 0, err
	}
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	return s.countHolder(ctx, t, kind, holder, now)
}

// countHolder counts the live sessions of one kind and holder; the
// caller holds sessionMu.
func (s *Store) countHolder(ctx context.Context, t custos.TenantID, kind, holder string, now time.Time) (int, error) {
	if kind == custos.SessionAttempt {
		idx, err := s.attemptIndex(ctx)
		if err != nil {
			return 0, err
		}
		return idx.live(attemptRef{t, holder}, now), nil
	}
	n := 0
	err := s.eachSession(ctx, sessionKindPrefix(t, kind), func(_ []byte, ss *custos.Session) error {
		if ss.Holder == holder && ss.Live(now) {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read sessions: %w", err)
	}
	return n, nil
}

// Sessions returns the tenant's live sessions of one kind.
func (s *Store) Sessions(ctx context.Context, t custos.TenantID, kind string, now time.Time) ([]*custos.Session, error) {
	if err := validKind(kind); err != nil {
		return nil, err
	}
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	var out []*custos.Session
	err := s.eachSession(ctx, sessionKindPrefix(t, kind), func(key []byte, ss *custos.Session) error {
		if !ss.Live(now) {
			return b.Delete(key, nil)
		}
		out = append(out, ss)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	if b.Count() > 0 {
		if err := b.Commit(pebble.NoSync); err != nil {
			return nil, fmt.Errorf("delete expired sessions: %w", err)
		}
	}
	slices.SortFunc(out, func(a, b *custos.Session) int {
		return cmp.Or(a.Created.Compare(b.Created), bytes.Compare(a.Hash[:], b.Hash[:]))
	})
	return out, nil
}

// errEnough stops a walk that has found what it wanted.
var errEnough = errors.New("enough")

// DeleteExpiredSessions deletes up to limit expired sessions of any tenant.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	err := s.eachSession(ctx, []byte{prefixSession}, func(key []byte, ss *custos.Session) error {
		if int(b.Count()) >= limit {
			return errEnough
		}
		if ss.Live(now) {
			return nil
		}
		return b.Delete(key, nil)
	})
	if err != nil && !errors.Is(err, errEnough) {
		return 0, fmt.Errorf("read sessions: %w", err)
	}
	if s.attempts != nil {
		s.attempts.prune(now)
	}
	n := int(b.Count())
	if n == 0 {
		return 0, nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return n, nil
}

// UseTOTPStep records a console user's TOTP step durably if it is later
// than the last one.
func (s *Store) UseTOTPStep(_ context.Context, t custos.TenantID, user string, step uint64) (bool, error) {
	key := append(append(tenantDataPrefix(nil, t), kindTOTPStep), user...)
	s.sessionMu.Lock()
	defer s.sessionMu.Unlock()
	var last uint64
	err := s.get(key, func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("corrupt TOTP step of %d bytes", len(v))
		}
		last = binary.BigEndian.Uint64(v)
		return nil
	})
	switch {
	case err == nil:
		if last >= step {
			return false, nil
		}
	case !errors.Is(err, custos.ErrNotFound):
		return false, fmt.Errorf("read TOTP step: %w", err)
	}
	if err := s.db.Set(key, binary.BigEndian.AppendUint64(nil, step), pebble.Sync); err != nil {
		return false, fmt.Errorf("store TOTP step: %w", err)
	}
	return true, nil
}
