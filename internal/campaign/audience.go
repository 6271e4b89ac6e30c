package campaign

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/custos-dev/custos"
)

// Limits on what a campaign may ask for, so that one request cannot make
// the walk of a million profiles arbitrarily slow.
const (
	maxTraitConditions = 50
	maxEventConditions = 10
	maxWithinDays      = 3650
	maxKeyLen          = 256
	maxValueLen        = 4 << 10
	maxMinCount        = 1_000_000
	// MaxCampaigns is how many campaigns a tenant may keep.
	MaxCampaigns = 10_000
)

var traitOps = map[string]bool{"eq": true, "neq": true, "exists": true, "gt": true, "lt": true, "contains": true}

// validateAudience checks an audience, naming the first field wrong.
func validateAudience(a *custos.Audience) error {
	if len(a.Traits) > maxTraitConditions {
		return custos.Errorf(custos.Invalid, "audience.traits has %d conditions; at most %d", len(a.Traits), maxTraitConditions)
	}
	if len(a.Events) > maxEventConditions {
		return custos.Errorf(custos.Invalid, "audience.events has %d conditions; at most %d", len(a.Events), maxEventConditions)
	}
	for i, c := range a.Traits {
		switch {
		case c.Key == "" || len(c.Key) > maxKeyLen:
			return custos.Errorf(custos.Invalid, "audience.traits[%d].key is required (at most %d characters)", i, maxKeyLen)
		case !traitOps[c.Op]:
			return custos.Errorf(custos.Invalid, "audience.traits[%d].op %q must be one of eq, neq, exists, gt, lt, contains", i, c.Op)
		case c.Op != "exists" && len(bytes.TrimSpace(c.Value)) == 0:
			return custos.Errorf(custos.Invalid, "audience.traits[%d].value is required for op %q", i, c.Op)
		case len(c.Value) > maxValueLen:
			return custos.Errorf(custos.Invalid, "audience.traits[%d].value is %d bytes; at most %d", i, len(c.Value), maxValueLen)
		case len(c.Value) > 0 && !json.Valid(c.Value):
			return custos.Errorf(custos.Invalid, "audience.traits[%d].value is not JSON", i)
		}
		if c.Op == "gt" || c.Op == "lt" {
			if _, ok := comparable(c.Value); !ok {
				return custos.Errorf(custos.Invalid, "audience.traits[%d].value must be a number or a string for op %q", i, c.Op)
			}
		}
		if c.Op == "contains" {
			var s string
			if json.Unmarshal(c.Value, &s) != nil && !isScalar(c.Value) {
				return custos.Errorf(custos.Invalid, "audience.traits[%d].value must be a string, number or boolean for op contains", i)
			}
		}
	}
	for i, e := range a.Events {
		switch {
		case e.Name == "" || len(e.Name) > maxKeyLen:
			return custos.Errorf(custos.Invalid, "audience.events[%d].name is required (at most %d characters)", i, maxKeyLen)
		case e.WithinDays < 0 || e.WithinDays > maxWithinDays:
			return custos.Errorf(custos.Invalid, "audience.events[%d].within_days must be between 0 (ever) and %d", i, maxWithinDays)
		case e.MinCount < 0 || e.MinCount > maxMinCount:
			return custos.Errorf(custos.Invalid, "audience.events[%d].min_count must be between 0 and %d", i, maxMinCount)
		}
	}
	return nil
}

func isScalar(v json.RawMessage) bool {
	var x any
	if json.Unmarshal(v, &x) != nil {
		return false
	}
	switch x.(type) {
	case string, float64, bool:
		return true
	}
	return false
}

// lookup finds a trait by key; a dotted key descends into objects when
// no trait has the whole key as its name.
func lookup(traits map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := traits[key]; ok {
		return v, !isNull(v)
	}
	head, rest, ok := strings.Cut(key, ".")
	if !ok {
		return nil, false
	}
	v, ok := traits[head]
	if !ok {
		return nil, false
	}
	var inner map[string]json.RawMessage
	if json.Unmarshal(v, &inner) != nil {
		return nil, false
	}
	return lookup(inner, rest)
}

func isNull(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) == 0 || string(v) == "null"
}

// value is a JSON scalar reduced to what conditions compare: a number or
// a string (booleans compare as "true"/"false").
type value struct {
	num   float64
	str   string
	isNum bool
}

// comparable decodes a JSON number or string; other kinds are not
// ordered.
func comparable(raw json.RawMessage) (value, bool) {
	// Fast paths for what traits mostly are: a plain string, a number.
	raw = bytes.TrimSpace(raw)
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return value{str: string(raw[1 : n-1])}, true
	}
	if len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		if f, err := strconv.ParseFloat(string(raw), 64); err == nil && !math.IsInf(f, 0) {
			return value{num: f, isNum: true}, true
		}
	}
	var x any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&x) != nil {
		return value{}, false
	}
	switch v := x.(type) {
	case json.Number:
		f, err := v.Float64()
		if err != nil || math.IsInf(f, 0) {
			return value{}, false
		}
		return value{num: f, isNum: true}, true
	case string:
		return value{str: v}, true
	case bool:
		if v {
			return value{str: "true"}, true
		}
		return value{str: "false"}, true
	}
	return value{}, false
}

// equal compares two JSON values: numbers by value, strings exactly,
// objects and arrays by their compact form.
func equal(a, b json.RawMessage) bool {
	va, oka := comparable(a)
	vb, okb := comparable(b)
	if oka && okb {
		if va.isNum != vb.isNum {
			return false
		}
		if va.isNum {
			return va.num == vb.num
		}
		return va.str == vb.str
	}
	if oka != okb {
		return false
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// matchTrait reports whether one condition holds for the traits. A
// missing or null trait matches only neq (it is not equal to anything).
func matchTrait(traits map[string]json.RawMessage, c custos.TraitCondition) bool {
	v, ok := lookup(traits, c.Key)
	switch c.Op {
	case "exists":
		want := true
		if len(c.Value) > 0 {
			json.Unmarshal(c.Value, &want)
		}
		return ok == want
	case "neq":
		return !ok || !equal(v, c.Value)
	}
	if !ok {
		return false
	}
	switch c.Op {
	case "eq":
		return equal(v, c.Value)
	case "gt", "lt":
		a, oka := comparable(v)
		b, okb := comparable(c.Value)
		if !oka || !okb || a.isNum != b.isNum {
			return false
		}
		if a.isNum {
			return c.Op == "gt" && a.num > b.num || c.Op == "lt" && a.num < b.num
		}
		return c.Op == "gt" && a.str > b.str || c.Op == "lt" && a.str < b.str
	case "contains":
		return contains(v, c.Value)
	}
	return false
}

// contains: a string trait contains the value as a substring
// (case-insensitively); an array trait contains an element equal to it.
func contains(v, want json.RawMessage) bool {
	var s string
	if json.Unmarshal(v, &s) == nil {
		var w string
		if json.Unmarshal(want, &w) != nil {
			w = string(bytes.TrimSpace(want))
		}
		return strings.Contains(strings.ToLower(s), strings.ToLower(w))
	}
	var arr []json.RawMessage
	if json.Unmarshal(v, &arr) == nil {
		for _, e := range arr {
			if equal(e, want) {
				return true
			}
		}
	}
	return false
}

// matchTraits reports whether every trait condition holds.
func matchTraits(traits map[string]json.RawMessage, a *custos.Audience) bool {
	for _, c := range a.Traits {
		if !matchTrait(traits, c) {
			return false
		}
	}
	return true
}

// eventWindow returns the earliest event time an event condition counts
// (zero: every event).
func eventWindow(e custos.EventCondition, now time.Time) time.Time {
	if e.WithinDays == 0 {
		return time.Time{}
	}
	return now.Add(-time.Duration(e.WithinDays) * 24 * time.Hour)
}

// minCount is the number of events a condition needs.
func minCount(e custos.EventCondition) int {
	return max(e.MinCount, 1)
}
