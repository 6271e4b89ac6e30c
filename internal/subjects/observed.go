package subjects

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/segment"
)

// The record of processing (Art. 30(2)) lists the categories of personal
// data a tenant actually sends, not the ones it might. The writer notes
// the category of every field of every stored message in a small
// taxonomy, and persists a tenant's set only when a category appears
// for the first time, in the same atomic write as the message that showed
// it. Trait names are kept, never their values.
//
// The taxonomy:
//
//	contact.email          traits.email, context.traits.email
//	contact.phone          traits.phone, context.traits.phone
//	identity.user_id       userId
//	identity.anonymous_id  anonymousId
//	device.id              context.device.id
//	device.advertising_id  context.device.advertisingId
//	device.ip_address      context.ip
//	device.user_agent      context.userAgent
//	location.<member>      each member of context.location (city, country, latitude…);
//	                       location.timezone for context.timezone;
//	                       location.address for traits.address
//	behaviour.events       track calls
//	behaviour.page_views   page and screen calls
//	profile.groups         group calls (membership of an account or organisation)
//	profile.traits.<name>  every other trait name, of traits and context.traits
//
// A name longer than maxCategoryName, or past the first maxCategories of a
// tenant, is recorded as profile.traits.(other) or location.(other).

// Category is one category of personal data seen at ingestion, with the
// time it was first stored.
type Category struct {
	Name      string    `json:"name"`
	FirstSeen time.Time `json:"first_seen"`
}

const (
	maxCategoryName = 64
	maxCategories   = 1000
)

// The fixed categories, one bit each.
const (
	catEmail uint32 = 1 << iota
	catPhone
	catUserID
	catAnonymousID
	catDeviceID
	catAdvertisingID
	catIP
	catUserAgent
	catEvents
	catPageViews
	catGroups
	catTimezone
	catAddress
)

var fixedCategories = []struct {
	bit  uint32
	name string
}{
	{catEmail, "contact.email"}, {catPhone, "contact.phone"},
	{catUserID, "identity.user_id"}, {catAnonymousID, "identity.anonymous_id"},
	{catDeviceID, "device.id"}, {catAdvertisingID, "device.advertising_id"},
	{catIP, "device.ip_address"}, {catUserAgent, "device.user_agent"},
	{catEvents, "behaviour.events"}, {catPageViews, "behaviour.page_views"},
	{catGroups, "profile.groups"}, {catTimezone, "location.timezone"}, {catAddress, "location.address"},
}

// observation is what one message shows: fixed categories as bits, and
// named ones (location members, trait names).
type observation struct {
	bits  uint32
	named []string
}

// observer derives observations, remembering the last context it read:
// the messages of a batch usually share the batch-level context.
type observer struct {
	lastCtx []byte
	ctxObs  observation
}

func (o *observer) observe(m *custos.Message) observation {
	var ob observation
	switch m.Type {
	case custos.Track:
		ob.bits |= catEvents
	case custos.Page, custos.Screen:
		ob.bits |= catPageViews
	case custos.Group:
		ob.bits |= catGroups
	}
	if m.UserID != "" {
		ob.bits |= catUserID
	}
	if m.AnonymousID != "" {
		ob.bits |= catAnonymousID
	}
	if m.Email != "" {
		ob.bits |= catEmail
	}
	if m.Type == custos.Identify {
		traitCategories(m.Traits, &ob)
	}
	if c := m.Context; len(c) > 0 {
		if len(o.lastCtx) != len(c) || &o.lastCtx[0] != &c[0] {
			o.lastCtx, o.ctxObs = c, contextCategories(c)
		}
		ob.bits |= o.ctxObs.bits
		ob.named = append(ob.named, o.ctxObs.named...)
	}
	return ob
}

// contextCategories reads the categories a context object shows.
func contextCategories(c []byte) observation {
	var ob observation
	eachMember(c, func(name []byte, v []byte) {
		switch string(name) {
		case "ip":
			if nonEmpty(v) {
				ob.bits |= catIP
			}
		case "userAgent":
			if nonEmpty(v) {
				ob.bits |= catUserAgent
			}
		case "timezone":
			if nonEmpty(v) {
				ob.bits |= catTimezone
			}
		case "device":
			eachMember(v, func(name []byte, v []byte) {
				switch {
				case string(name) == "id" && nonEmpty(v):
					ob.bits |= catDeviceID
				case string(name) == "advertisingId" && nonEmpty(v):
					ob.bits |= catAdvertisingID
				}
			})
		case "location":
			eachMember(v, func(name []byte, v []byte) {
				if nonEmpty(v) {
					ob.named = append(ob.named, named("location.", name))
				}
			})
		case "traits":
			traitCategories(v, &ob)
		}
	})
	return ob
}

// traitCategories adds the categories of a traits object's names.
func traitCategories(traits []byte, ob *observation) {
	eachMember(traits, func(name []byte, v []byte) {
		if !nonEmpty(v) {
			return
		}
		switch string(name) {
		case "email":
			ob.bits |= catEmail
		case "phone":
			ob.bits |= catPhone
		case "address":
			ob.bits |= catAddress
		default:
			ob.named = append(ob.named, named("profile.traits.", name))
		}
	})
}

func named(prefix string, name []byte) string {
	if len(name) == 0 || len(name) > maxCategoryName {
		return prefix + "(other)"
	}
	return prefix + string(name)
}

// overflow is the category a named one is recorded as once a tenant has
// maxCategories.
func overflow(n string) string {
	if strings.HasPrefix(n, "location.") {
		return "location.(other)"
	}
	return "profile.traits.(other)"
}

// nonEmpty reports whether a JSON value carries something: not null, "",
// {} or [].
func nonEmpty(v []byte) bool {
	v = bytes.TrimSpace(v)
	switch string(v) {
	case "", "null", `""`, "{}", "[]":
		return false
	}
	return true
}

// eachMember calls fn with the name (its text, valid only during the
// call) and raw value of each member of the JSON object obj; anything
// else is ignored. The objects are parts of messages Decode has checked,
// so segment.Members walks them without decoding them again.
func eachMember(obj []byte, fn func(name []byte, v []byte)) {
	var scratch []byte
	segment.Members(obj, func(name, v []byte) bool {
		fn(segment.MemberName(name, &scratch), v)
		return true
	})
}

// observed is the writer's view of one tenant's categories.
type observed struct {
	bits  uint32
	names map[string]time.Time
	dirty bool
	// base is the SHA-256 of the stored record these names were read
	// from or last written as (zero: none), for the Guard of a store
	// other nodes share.
	base [32]byte
}

// observedRecordKey is the associated data of the sealed record.
var observedRecordKey = []byte("observed-categories")

// note records what a stored message shows, marking the tenant's record
// dirty if something is new.
func (w *writer) note(ctx context.Context, g *group, t custos.TenantID, ob observation, at time.Time) error {
	o := w.observed[t]
	if o != nil && ob.bits&^o.bits == 0 && len(ob.named) == 0 {
		return nil // the common case: nothing new, no map lookups
	}
	if o == nil {
		var err error
		if o, err = w.loadObserved(ctx, t); err != nil {
			return err
		}
		w.observed[t] = o
	}
	for _, f := range fixedCategories {
		if ob.bits&f.bit != 0 && o.bits&f.bit == 0 {
			o.bits |= f.bit
			o.names[f.name] = at
			o.dirty = true
		}
	}
	for _, n := range ob.named {
		if _, ok := o.names[n]; ok {
			continue
		}
		if len(o.names) >= maxCategories {
			n = overflow(n)
			if _, ok := o.names[n]; ok {
				continue
			}
		}
		o.names[n] = at
		o.dirty = true
	}
	if o.dirty {
		g.observedDirty = append(g.observedDirty, t)
	}
	return nil
}

// loadObserved reads a tenant's record from the store.
func (w *writer) loadObserved(ctx context.Context, t custos.TenantID) (*observed, error) {
	o := &observed{names: map[string]time.Time{}}
	sealed, err := w.p.store.Observed(ctx, t)
	switch {
	case errors.Is(err, custos.ErrNotFound):
		sealed = nil
	case err != nil:
		return nil, err
	default:
		o.base = sha256.Sum256(sealed)
	}
	cats, err := openObserved(w.p.ring, t, sealed)
	if err != nil {
		return nil, err
	}
	for _, c := range cats {
		o.names[c.Name] = c.FirstSeen
		for _, f := range fixedCategories {
			if f.name == c.Name {
				o.bits |= f.bit
			}
		}
	}
	return o, nil
}

// sealObserved puts the dirty tenants' records into the group's writes.
func (w *writer) sealObserved(g *group) error {
	for _, t := range g.observedDirty {
		o := w.observed[t]
		if o == nil || !o.dirty {
			continue
		}
		cats := make([]Category, 0, len(o.names))
		for _, n := range slices.Sorted(maps.Keys(o.names)) {
			cats = append(cats, Category{Name: n, FirstSeen: o.names[n]})
		}
		plain, err := json.Marshal(cats)
		if err != nil {
			return fmt.Errorf("encode observed categories: %w", err)
		}
		sealed, err := w.p.ring.SealTenant(t, observedRecordKey, plain)
		if err != nil {
			return fmt.Errorf("seal observed categories: %w", err)
		}
		g.write(t).Observed = sealed
		if w.shared != nil {
			base := o.base
			w.pendingGuard(t).Observed = &base
		}
		o.base = sha256.Sum256(sealed)
		o.dirty = false
	}
	g.observedDirty = g.observedDirty[:0]
	return nil
}

type tenantOpener interface {
	OpenTenant(t custos.TenantID, recordKey, sealed []byte) ([]byte, error)
}

func readObserved(ctx context.Context, st custos.DataStore, ring tenantOpener, t custos.TenantID) ([]Category, error) {
	sealed, err := st.Observed(ctx, t)
	if errors.Is(err, custos.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return openObserved(ring, t, sealed)
}

// openObserved decodes a sealed record of observed categories (none for
// no record).
func openObserved(ring tenantOpener, t custos.TenantID, sealed []byte) ([]Category, error) {
	if sealed == nil {
		return nil, nil
	}
	plain, err := ring.OpenTenant(t, observedRecordKey, sealed)
	if err != nil {
		return nil, fmt.Errorf("open observed categories: %w", err)
	}
	var cats []Category
	if err := json.Unmarshal(plain, &cats); err != nil {
		return nil, fmt.Errorf("decode observed categories: %w", err)
	}
	return cats, nil
}

// Observed returns the categories of personal data seen at ingestion for
// tenant t, sorted by name, each with the time it was first stored.
func (r *Reader) Observed(ctx context.Context, t custos.TenantID) ([]Category, error) {
	cats, err := readObserved(ctx, r.store, r.ring, t)
	if cats == nil {
		cats = []Category{}
	}
	return cats, err
}
