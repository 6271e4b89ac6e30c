package segment

import (
	"bytes"
	"unicode/utf8"

	"github.com/custos-dev/custos"
	"github.com/go-json-experiment/json/jsontext"
)

// ctxInfo is a context object as read from the body: what copying it,
// merging it and finding identifiers in it take, noted on the way through.
type ctxInfo struct {
	present bool
	span    []byte // the object as sent
	clean   bool   // span can be copied as is (see scan)
	traits  []byte // the "traits" member's value, nil if none
	device  []byte // the "device" member's value, nil if none
	// traitsClean says whether traits can be copied as is.
	traitsClean bool
	// lo and hi bound the object's members in parser.spans.
	lo, hi int
}

// memberSpan is where a context member's name and value are in the body.
type memberSpan struct {
	nameStart, nameEnd, valueStart, valueEnd int32
}

// context reads a context object, checking as it goes that it nests no
// deeper than allowed and noting whether it is clean.
func (p *parser) context(info *ctxInfo) error {
	if _, err := p.dec.ReadToken(); err != nil {
		return err
	}
	if err := p.checkDepth(); err != nil {
		return err
	}
	start := int(p.dec.InputOffset()) - 1
	*info = ctxInfo{present: true, clean: true, lo: len(p.spans)}
	prev, gap := start+1, 0 // where the previous token ended; bytes expected between
	for p.dec.PeekKind() != '}' {
		name, raw, err := p.name()
		if err != nil {
			return err
		}
		end := int(p.dec.InputOffset())
		_, rawClean := scan(raw)
		info.clean = info.clean && rawClean && end-len(raw)-prev == gap
		v, clean, err := p.rawValue()
		if err != nil {
			return err
		}
		vend := int(p.dec.InputOffset())
		info.clean = info.clean && clean && vend-len(v)-end == 1
		p.spans = append(p.spans, memberSpan{int32(end - len(raw)), int32(end), int32(vend - len(v)), int32(vend)})
		switch string(name) {
		case "traits":
			info.traits, info.traitsClean = v, clean
		case "device":
			info.device = v
		}
		prev, gap = vend, 1
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return err
	}
	end := int(p.dec.InputOffset())
	info.clean = info.clean && end-1 == prev
	info.span = p.body[start:end:end]
	info.hi = len(p.spans)
	return nil
}

// member is one top-level member of a context object.
type member struct {
	raw   []byte // the quoted name as sent
	name  []byte // its text, with U+FFFD for invalid UTF-8
	value []byte
}

// members appends the members of the context info to dst.
func (p *parser) members(info *ctxInfo, dst []member) []member {
	for _, s := range p.spans[info.lo:info.hi] {
		raw := p.body[s.nameStart:s.nameEnd:s.nameEnd]
		name := raw[1 : len(raw)-1]
		if bytes.IndexByte(name, '\\') >= 0 || !utf8.Valid(name) {
			name = []byte(unquote(raw, &p.scratch))
		}
		dst = append(dst, member{raw: raw, name: name, value: p.body[s.valueStart:s.valueEnd:s.valueEnd]})
	}
	return dst
}

// msgContext is a message's context after the merge, and the identifiers found in it.
type msgContext struct {
	json    []byte
	traits  []byte // the effective context.traits as sent; nil if none
	clean   bool   // traits can be copied as is
	email   string // context.traits.email
	devices []string
}

// batchContext is the batch-level context, prepared once for every message.
type batchContext struct {
	msgContext
	info    ctxInfo
	members []member
	index   map[string]int // member name → position, for large contexts
	stamp   []int          // stamp[i] == gen: member i is overridden
	gen     int
	extra   int // bytes the merge has added to messages so far
}

// prepareBatchContext builds the batch-level context once: the messages
// without their own context share it.
func (p *parser) prepareBatchContext() {
	bc := &p.batch
	if !bc.info.present {
		return
	}
	bc.json = p.keep(bc.info.span, bc.info.clean)
	bc.msgContext.traits, bc.msgContext.clean = bc.info.traits, bc.info.traitsClean
	bc.email = p.lookupOne(bc.info.traits, "email")
	bc.devices = p.devices(bc.info.device)
	bc.members = p.members(&bc.info, nil)
	if len(bc.members) > 8 {
		bc.index = make(map[string]int, len(bc.members))
		for i, m := range bc.members {
			bc.index[string(m.name)] = i
		}
		bc.stamp = make([]int, len(bc.members))
	}
}

// messageContext merges the batch-level context into m's own: a shallow
// merge of top-level members in which the message's members win. It
// returns an error if the merge makes the batch too large as a whole.
func (p *parser) messageContext(m *pending) (mc msgContext, err error) {
	own := &m.ctx
	if !own.present {
		return p.batch.msgContext, nil
	}
	if p.batch.info.present {
		if mc.json, err = p.merge(own); err != nil {
			return mc, err
		}
	} else {
		mc.json = p.keep(own.span, own.clean)
	}
	if own.traits != nil {
		mc.traits, mc.clean = own.traits, own.traitsClean
		mc.email = p.lookupOne(own.traits, "email")
	} else {
		mc.traits, mc.clean, mc.email = p.batch.traits, p.batch.clean, p.batch.email
	}
	if own.device != nil {
		mc.devices = p.devices(own.device)
	} else {
		mc.devices = p.batch.devices
	}
	return mc, nil
}

// merge appends own's members and then the batch context's members whose
// names are not in own. It returns an error once merging has added more
// than a batch's worth of bytes to the messages: a bound on what a small
// body can make Decode allocate.
func (p *parser) merge(own *ctxInfo) ([]byte, error) {
	bc := &p.batch
	p.ownMembers = p.members(own, p.ownMembers[:0])
	if bc.index != nil {
		bc.gen++
		for _, o := range p.ownMembers {
			if i, ok := bc.index[string(o.name)]; ok {
				bc.stamp[i] = bc.gen
			}
		}
	}
	start := len(p.out)
	p.out = append(p.out, '{')
	for _, o := range p.ownMembers {
		p.out = appendMember(p.out, o)
	}
	added := len(p.out)
	for i, b := range bc.members {
		if bc.index != nil && bc.stamp[i] == bc.gen || bc.index == nil && find(p.ownMembers, b.name) {
			continue
		}
		p.out = appendMember(p.out, b)
	}
	bc.extra += len(p.out) - added
	if bc.extra > p.limits.MaxBatch {
		return nil, custos.Errorf(custos.TooLarge, "merging the batch context into every message would add more than %d bytes", p.limits.MaxBatch)
	}
	if p.out[len(p.out)-1] == ',' {
		p.out = p.out[:len(p.out)-1]
	}
	p.out = append(p.out, '}')
	if !own.clean || !bc.info.clean {
		// Some member needs reformatting: reformat the merged object whole.
		merged := bytes.Clone(p.out[start:])
		p.out = appendValue(p.out[:start], merged, false)
	}
	return p.out[start:len(p.out):len(p.out)], nil
}

// appendMember appends m and a comma.
func appendMember(dst []byte, m member) []byte {
	dst = append(dst, m.raw...)
	dst = append(dst, ':')
	dst = append(dst, m.value...)
	return append(dst, ',')
}

// find reports whether ms has a member called name.
func find(ms []member, name []byte) bool {
	for i := range ms {
		if bytes.Equal(ms[i].name, name) {
			return true
		}
	}
	return false
}

// devices returns device.advertisingId and device.id, those that are
// non-empty strings, without repeats.
func (p *parser) devices(device []byte) []string {
	var found [2]string
	p.lookup(device, []string{"advertisingId", "id"}, found[:])
	switch {
	case found[0] == "" && found[1] == "":
		return nil
	case found[0] == "":
		return found[1:2:2]
	case found[1] == "" || found[1] == found[0]:
		return found[0:1:1]
	}
	return found[:]
}

// subOptions read values the main decoder has already checked.
var subOptions = []jsontext.Options{jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)}

// lookupOne returns the string member called key of the object obj, or "".
func (p *parser) lookupOne(obj []byte, key string) string {
	var found [1]string
	p.lookup(obj, []string{key}, found[:])
	return found[0]
}

// lookup finds the string members of the object obj called keys[i] and
// stores their text in found[i]. Members of other kinds are ignored, as
// is obj if it is not an object.
func (p *parser) lookup(obj []byte, keys []string, found []string) {
	if len(obj) == 0 || obj[0] != '{' {
		return
	}
	p.sub = *bytes.NewBuffer(obj)
	p.subDec.Reset(&p.sub, subOptions...)
	if _, err := p.subDec.ReadToken(); err != nil {
		return
	}
	for p.subDec.PeekKind() == '"' {
		raw, err := p.subDec.ReadValue()
		if err != nil {
			return
		}
		name := raw[1 : len(raw)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			name = []byte(unquote(raw, &p.scratch))
		}
		k := -1
		for i, key := range keys {
			if string(name) == key {
				k = i
				break
			}
		}
		if k >= 0 && p.subDec.PeekKind() == '"' {
			v, err := p.subDec.ReadValue()
			if err != nil {
				return
			}
			found[k] = unquote(v, &p.scratch)
			continue
		}
		if err := p.subDec.SkipValue(); err != nil {
			return
		}
	}
}
