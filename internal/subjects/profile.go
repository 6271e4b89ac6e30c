package subjects

import (
	stdjson "encoding/json"
	"slices"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/custos-dev/custos"
)

// profileRecord is the sealed form of a profile. Identifiers live here in
// plaintext (sealed), while the index holds only their keyed hashes.
type profileRecord struct {
	IDs     map[string][]string      `json:"ids"`
	Traits  map[string]trait         `json:"traits,omitempty"`
	Groups  []custos.GroupMembership `json:"groups,omitempty"`
	Created time.Time                `json:"created"`
}

// trait keeps each value with the time it was set, so that the newest
// message wins even when messages arrive out of order.
type trait struct {
	V jsontext.Value `json:"v"`
	T time.Time      `json:"t"`
}

// profileRecordKey is the associated data of a sealed profile.
var profileRecordKey = []byte("profile")

func (p *profileRecord) hasID(id custos.Identifier) bool {
	return slices.Contains(p.IDs[id.Type.String()], id.Value)
}

func (p *profileRecord) addID(id custos.Identifier) bool {
	if p.hasID(id) {
		return false
	}
	if p.IDs == nil {
		p.IDs = map[string][]string{}
	}
	k := id.Type.String()
	p.IDs[k] = append(p.IDs[k], id.Value)
	return true
}

// identifiers lists every identifier of the profile.
func (p *profileRecord) identifiers() []custos.Identifier {
	var ids []custos.Identifier
	for _, typ := range custos.IdentifierTypes {
		for _, v := range p.IDs[typ.String()] {
			ids = append(ids, custos.Identifier{Type: typ, Value: v})
		}
	}
	return ids
}

// setTraits merges a raw JSON object of traits in, per trait, newest wins.
func (p *profileRecord) setTraits(raw []byte, at time.Time) (bool, error) {
	if len(raw) == 0 {
		return false, nil
	}
	var in map[string]jsontext.Value
	if err := json.Unmarshal(raw, &in); err != nil {
		return false, err
	}
	changed := false
	for k, v := range in {
		if old, ok := p.Traits[k]; ok && old.T.After(at) {
			continue
		}
		if p.Traits == nil {
			p.Traits = map[string]trait{}
		}
		p.Traits[k] = trait{V: v.Clone(), T: at}
		changed = true
	}
	return changed, nil
}

// setGroup records a group membership, newest traits win.
func (p *profileRecord) setGroup(id string, traits []byte, at time.Time) {
	for i, g := range p.Groups {
		if g.GroupID == id {
			if !g.UpdatedAt.After(at) {
				p.Groups[i].UpdatedAt = at
				if len(traits) > 0 {
					p.Groups[i].Traits = slices.Clone(traits)
				}
			}
			return
		}
	}
	p.Groups = append(p.Groups, custos.GroupMembership{GroupID: id, Traits: slices.Clone(traits), UpdatedAt: at})
}

// merge folds another subject's profile into p.
func (p *profileRecord) merge(o *profileRecord) {
	for _, id := range o.identifiers() {
		p.addID(id)
	}
	for k, v := range o.Traits {
		if old, ok := p.Traits[k]; ok && old.T.After(v.T) {
			continue
		}
		if p.Traits == nil {
			p.Traits = map[string]trait{}
		}
		p.Traits[k] = v
	}
	for _, g := range o.Groups {
		p.setGroup(g.GroupID, g.Traits, g.UpdatedAt)
	}
	if !o.Created.IsZero() && (p.Created.IsZero() || o.Created.Before(p.Created)) {
		p.Created = o.Created
	}
}

// view renders the API form of the profile.
func (p *profileRecord) view(s custos.SubjectID) *custos.Profile {
	out := &custos.Profile{
		Subject:     s,
		Identifiers: map[string][]string{},
		Traits:      map[string]stdjson.RawMessage{},
		Groups:      p.Groups,
	}
	for _, typ := range custos.IdentifierTypes {
		out.Identifiers[typ.String()] = append([]string{}, p.IDs[typ.String()]...)
	}
	for k, v := range p.Traits {
		out.Traits[k] = stdjson.RawMessage(v.V)
	}
	if out.Groups == nil {
		out.Groups = []custos.GroupMembership{}
	}
	return out
}
