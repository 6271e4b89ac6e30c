package subjects

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/custos-dev/custos"
)

// Rectify sets or removes traits of the subject an identifier belongs to
// (Art. 16): a JSON null removes the trait. It runs in order with
// ingestion, so the change is neither overtaken by a message enqueued
// after it nor lost to one before. It returns the subject and the names
// of the traits changed, sorted.
func (p *Pipeline) Rectify(ctx context.Context, t custos.TenantID, id custos.Identifier, traits map[string]json.RawMessage) (custos.SubjectID, []string, error) {
	h, err := p.ring.HashIdentifier(t, id)
	if err != nil {
		return custos.SubjectID{}, nil, err
	}
	var s custos.SubjectID
	var changed []string
	err = p.control(ctx, t, func(w *writer, g *group) error {
		sub, ok, err := w.lookup(ctx, t, h)
		if err != nil {
			return err
		}
		if !ok {
			return custos.Errorf(custos.NotFound, "no subject with that %s", id.Type)
		}
		ps, err := w.profileOf(ctx, g, t, sub)
		if err != nil {
			return err
		}
		if ps == nil {
			return custos.Errorf(custos.NotFound, "no subject with that %s", id.Type)
		}
		now := p.opts.Now().UTC()
		for k, v := range traits {
			if string(v) == "null" {
				if _, had := ps.rec.Traits[k]; had {
					delete(ps.rec.Traits, k)
					changed = append(changed, k)
				}
				continue
			}
			if ps.rec.Traits == nil {
				ps.rec.Traits = map[string]trait{}
			}
			// A rectification is the newest word on a trait: later than any
			// message dated up to now.
			ps.rec.Traits[k] = trait{V: jsontext.Value(slices.Clone(v)), T: now}
			changed = append(changed, k)
		}
		ps.dirty = ps.dirty || len(changed) > 0
		s = sub
		return nil
	})
	if err != nil {
		return custos.SubjectID{}, nil, err // the writer may still be in fn
	}
	slices.Sort(changed)
	return s, changed, nil
}
