package subjects

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/keyring"
)

// Reader reads subjects back: lookups by identifier, profiles and events,
// opened with each subject's key.
type Reader struct {
	store custos.DataStore
	ring  *keyring.Ring
}

// NewReader returns a Reader over store and ring.
func NewReader(store custos.DataStore, ring *keyring.Ring) *Reader {
	return &Reader{store: store, ring: ring}
}

// Find returns the subject an identifier belongs to, or a NotFound error.
func (r *Reader) Find(ctx context.Context, t custos.TenantID, id custos.Identifier) (custos.SubjectID, error) {
	h, err := r.ring.HashIdentifier(t, id)
	if err != nil {
		return custos.SubjectID{}, err
	}
	s, err := r.store.Subject(ctx, t, h)
	if errors.Is(err, custos.ErrNotFound) {
		return s, custos.Errorf(custos.NotFound, "no subject with that %s", id.Type)
	}
	return s, err
}

func (r *Reader) key(ctx context.Context, t custos.TenantID, s custos.SubjectID) (*keyring.SubjectKey, error) {
	k, _, err := r.ring.SubjectKey(ctx, t, s, false)
	if errors.Is(err, custos.ErrNotFound) || errors.Is(err, custos.ErrShredded) {
		return nil, custos.Errorf(custos.NotFound, "no subject %s", s)
	}
	return k, err
}

// Profile returns the profile of a subject, or a NotFound error.
func (r *Reader) Profile(ctx context.Context, t custos.TenantID, s custos.SubjectID) (*custos.Profile, error) {
	k, err := r.key(ctx, t, s)
	if err != nil {
		return nil, err
	}
	sealed, err := r.store.Profile(ctx, t, s)
	if errors.Is(err, custos.ErrNotFound) {
		return nil, custos.Errorf(custos.NotFound, "no subject %s", s)
	}
	if err != nil {
		return nil, err
	}
	plain, err := k.Open(nil, profileRecordKey, sealed)
	if err != nil {
		return nil, fmt.Errorf("open profile: %w", err)
	}
	var rec profileRecord
	if err := json.Unmarshal(plain, &rec); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	p := rec.view(s)
	first, last, ok, err := r.store.EventSpan(ctx, t, s)
	if err != nil {
		return nil, err
	}
	if ok {
		p.FirstSeen, p.LastSeen = first, last
	}
	return p, nil
}

// Events returns up to limit events of a subject after the cursor, in
// timestamp order, and the cursor of the next page ("" at the end).
func (r *Reader) Events(ctx context.Context, t custos.TenantID, s custos.SubjectID, cursor string, limit int) ([]custos.Event, string, error) {
	after, err := ParseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	k, err := r.key(ctx, t, s)
	if err != nil {
		return nil, "", err
	}
	events := []custos.Event{}
	var last custos.StoredEvent
	more := false
	err = r.store.Events(ctx, t, s, after, func(se custos.StoredEvent) (bool, error) {
		if len(events) == limit {
			more = true
			return false, nil
		}
		e, err := openEvent(k, se)
		if err != nil {
			return false, err
		}
		events = append(events, e)
		last = se
		return true, nil
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if more {
		next = FormatCursor(custos.EventCursor{Time: last.Time, ID: last.ID})
	}
	return events, next, nil
}

// EachEvent calls fn for every event of a subject, in order, with constant
// memory whatever the subject's size.
func (r *Reader) EachEvent(ctx context.Context, t custos.TenantID, s custos.SubjectID, fn func(custos.Event) error) error {
	k, err := r.key(ctx, t, s)
	if err != nil {
		return err
	}
	return r.store.Events(ctx, t, s, nil, func(se custos.StoredEvent) (bool, error) {
		e, err := openEvent(k, se)
		if err != nil {
			return false, err
		}
		return true, fn(e)
	})
}

func openEvent(k *keyring.SubjectKey, se custos.StoredEvent) (custos.Event, error) {
	var e custos.Event
	plain, err := k.Open(nil, eventRecordKey(se.Time, se.ID), se.Value)
	if err != nil {
		return e, fmt.Errorf("open event: %w", err)
	}
	if err := json.Unmarshal(plain, &e); err != nil {
		return e, fmt.Errorf("decode event: %w", err)
	}
	return e, nil
}

// FormatCursor encodes an event position as an opaque page cursor.
func FormatCursor(c custos.EventCursor) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(c.Time.UnixNano()))
	return base64.RawURLEncoding.EncodeToString(append(b, c.ID[:]...))
}

// ParseCursor decodes a cursor made by FormatCursor; "" means the start.
func ParseCursor(s string) (*custos.EventCursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 8+16 {
		return nil, custos.Errorf(custos.Invalid, "cursor is not one this server issued")
	}
	c := &custos.EventCursor{Time: time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC()}
	copy(c.ID[:], b[8:])
	return c, nil
}

// Pseudonym returns the name under which a subject appears in the audit
// log: a keyed hash of its id, so entries link one subject's actions
// without naming anyone, and survive the subject's erasure.
func (r *Reader) Pseudonym(t custos.TenantID, s custos.SubjectID) (string, error) {
	h, err := r.ring.HashValue(t, "audit-subject", s[:])
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h[:16]), nil
}

// OpenProfile opens a stored profile with its subject's key, for a
// caller walking the store itself: identifiers and traits only (no
// groups, FirstSeen or LastSeen), read token by token without the
// per-trait times, which is what an audience of a million profiles needs,
// fast.
func OpenProfile(k *keyring.SubjectKey, sp custos.StoredProfile) (*custos.Profile, error) {
	plain, err := k.Open(nil, profileRecordKey, sp.Value)
	if err != nil {
		return nil, fmt.Errorf("open profile: %w", err)
	}
	p := &custos.Profile{Subject: sp.Subject, Identifiers: map[string][]string{}, Traits: map[string]stdjson.RawMessage{}, Groups: []custos.GroupMembership{}}
	if err := decodeProfileLite(plain, p); err != nil {
		return nil, fmt.Errorf("decode profile: %w", err)
	}
	return p, nil
}

// decodeProfileLite reads the ids and the trait values of a profile
// record, skipping everything else.
func decodeProfileLite(plain []byte, p *custos.Profile) error {
	lr := liteDecoders.Get().(*liteDecoder)
	defer liteDecoders.Put(lr)
	lr.r.Reset(plain)
	lr.d.Reset(&lr.r)
	d := &lr.d
	if t, err := d.ReadToken(); err != nil || t.Kind() != '{' {
		return fmt.Errorf("profile record is not an object: %v", err)
	}
	for d.PeekKind() == '"' {
		name, err := d.ReadToken()
		if err != nil {
			return err
		}
		switch name.String() {
		case "ids":
			if err := eachDecodedMember(d, func(typ string) error {
				if _, err := d.ReadToken(); err != nil { // [
					return err
				}
				for d.PeekKind() == '"' {
					v, err := d.ReadToken()
					if err != nil {
						return err
					}
					p.Identifiers[typ] = append(p.Identifiers[typ], v.String())
				}
				_, err := d.ReadToken() // ]
				return err
			}); err != nil {
				return err
			}
		case "traits":
			if err := eachDecodedMember(d, func(key string) error {
				return eachDecodedMember(d, func(field string) error {
					if field != "v" {
						return d.SkipValue()
					}
					v, err := d.ReadValue()
					if err != nil {
						return err
					}
					p.Traits[key] = bytes.Clone(v)
					return nil
				})
			}); err != nil {
				return err
			}
		default:
			if err := d.SkipValue(); err != nil {
				return err
			}
		}
	}
	_, err := d.ReadToken() // }
	return err
}

// liteDecoder is a reusable decoder: making one costs more than reading
// a profile.
type liteDecoder struct {
	r bytes.Reader
	d jsontext.Decoder
}

var liteDecoders = sync.Pool{New: func() any { return new(liteDecoder) }}

// eachDecodedMember reads an object (or null), calling fn with each member's
// name; fn reads the member's value.
func eachDecodedMember(d *jsontext.Decoder, fn func(name string) error) error {
	t, err := d.ReadToken()
	if err != nil || t.Kind() == 'n' {
		return err
	}
	if t.Kind() != '{' {
		return fmt.Errorf("want an object, found %v", t.Kind())
	}
	for d.PeekKind() == '"' {
		name, err := d.ReadToken()
		if err != nil {
			return err
		}
		if err := fn(name.String()); err != nil {
			return err
		}
	}
	_, err = d.ReadToken()
	return err
}

// EventsSince calls fn for a subject's events at or after since, in
// order, until fn returns false or an error.
func (r *Reader) EventsSince(ctx context.Context, t custos.TenantID, s custos.SubjectID, since time.Time, fn func(custos.Event) (bool, error)) error {
	k, err := r.key(ctx, t, s)
	if err != nil {
		return err
	}
	var after *custos.EventCursor
	if !since.IsZero() {
		// Message hashes are random: none is all zeros.
		after = &custos.EventCursor{Time: since}
	}
	return r.store.Events(ctx, t, s, after, func(se custos.StoredEvent) (bool, error) {
		e, err := openEvent(k, se)
		if err != nil {
			return false, err
		}
		return fn(e)
	})
}
