package segment

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/custos-dev/custos"
)

// pending is what Decode notes about a message as it reads it, beside the
// custos.Message it fills in (in parser.msgs, at the same position), until
// the batch-level fields it depends on (context, sentAt) are known and it
// can be judged.
type pending struct {
	index int
	size  int // bytes of the message's own JSON

	notObject string // the kind of value the message was, if not an object
	badType   string // the unknown type the body named
	problems  []problem
	ctx       ctxInfo

	original, timestamp, sentAt          time.Time
	hasOriginal, hasTimestamp, hasSentAt bool
}

// problem is a field that makes a message invalid, if the field matters
// for the message's type.
type problem struct {
	field, reason, text string
}

func (m *pending) problem(field, reason, format string, args ...any) {
	m.problems = append(m.problems, problem{field, reason, fmt.Sprintf(format, args...)})
}

// message reads one message of a batch, or the whole body of a
// single-message path.
func (p *parser) message(index int) error {
	// Read straight into place: copying a message's worth of pointers
	// costs write barriers.
	p.pending = append(p.pending, pending{index: index})
	p.msgs = append(p.msgs, custos.Message{})
	m := &p.pending[len(p.pending)-1]
	if p.dec.PeekKind() != '{' {
		v, err := p.value()
		if err != nil {
			return err
		}
		m.notObject, m.size = kindName(v), len(v)
		return nil
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return err
	}
	start := int(p.dec.InputOffset()) - 1
	if err := p.checkDepth(); err != nil {
		return err
	}
	for p.dec.PeekKind() != '}' {
		name, _, err := p.name()
		if err != nil {
			return err
		}
		if err := p.field(m, name); err != nil {
			return err
		}
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return err
	}
	m.size = int(p.dec.InputOffset()) - start
	return nil
}

// field reads the value of the message member called name into m and
// its message.
func (p *parser) field(m *pending, name []byte) error {
	msg := &p.msgs[len(p.msgs)-1]
	var err error
	switch string(name) {
	case "type":
		err = p.typeField(m, msg)
	case "messageId":
		msg.MessageID, err = p.id(m, "messageId")
	case "userId":
		msg.UserID, err = p.id(m, "userId")
	case "anonymousId":
		msg.AnonymousID, err = p.id(m, "anonymousId")
	case "previousId":
		msg.PreviousID, err = p.id(m, "previousId")
	case "groupId":
		msg.GroupID, err = p.id(m, "groupId")
	case "event":
		msg.Event, err = p.str(m, "event")
	case "name":
		msg.Name, err = p.str(m, "name")
	case "properties":
		msg.Properties, err = p.object(m, "properties")
	case "traits":
		msg.Traits, err = p.object(m, "traits")
	case "context":
		if p.dec.PeekKind() == '{' {
			return p.context(&m.ctx)
		}
		v, err := p.value()
		if err == nil && v[0] != 'n' {
			m.problem("context", reasonInvalidMessage, "context must be an object, not %s", kindName(v))
		}
		return err
	case "timestamp":
		m.timestamp, m.hasTimestamp, err = p.time(m, "timestamp")
	case "originalTimestamp":
		m.original, m.hasOriginal, err = p.time(m, "originalTimestamp")
	case "sentAt":
		m.sentAt, m.hasSentAt, err = p.time(m, "sentAt")
	case "writeKey":
		var v []byte
		if v, err = p.value(); err == nil && v[0] == '"' && p.msgWriteKey == "" {
			p.msgWriteKey = unquote(v, &p.scratch)
		}
	default:
		_, err = p.value()
	}
	return err
}

// typeField reads "type". On a path with a fixed type the path wins, and
// whatever the body says is ignored.
func (p *parser) typeField(m *pending, msg *custos.Message) error {
	v, err := p.value()
	if err != nil || (!p.kind.Batch && p.kind.Type != "") {
		return err
	}
	switch v[0] {
	case 'n':
	case '"':
		t, ok := messageType(stringBytes(v, &p.scratch))
		if !ok {
			m.badType = unquote(v, &p.scratch)
		}
		msg.Type = t
	default:
		m.problem("type", reasonInvalidMessage, "type must be a string, not %s", kindName(v))
	}
	return nil
}

// id reads an identifier: a string, or a number taken as its decimal text.
func (p *parser) id(m *pending, field string) (string, error) {
	v, err := p.value()
	if err != nil {
		return "", err
	}
	switch c := v[0]; {
	case c == '"':
		return unquote(v, &p.scratch), nil
	case c == 'n':
	case c == '-' || '0' <= c && c <= '9':
		s, ok := numberText(v)
		if !ok {
			m.problem(field, reasonInvalidMessage, "%s %s is out of range", field, clip(string(v)))
		}
		return s, nil
	default:
		m.problem(field, reasonInvalidMessage, "%s must be a string or a number, not %s", field, kindName(v))
	}
	return "", nil
}

// str reads a string field; null counts as absent.
func (p *parser) str(m *pending, field string) (string, error) {
	v, err := p.value()
	if err != nil {
		return "", err
	}
	switch v[0] {
	case '"':
		return unquote(v, &p.scratch), nil
	case 'n':
	default:
		m.problem(field, reasonInvalidMessage, "%s must be a string, not %s", field, kindName(v))
	}
	return "", nil
}

// object reads a free-form object field and returns it as clean raw JSON;
// null counts as absent.
func (p *parser) object(m *pending, field string) ([]byte, error) {
	if p.dec.PeekKind() == '{' {
		v, clean, err := p.rawValue()
		if err != nil {
			return nil, err
		}
		return p.keep(v, clean), nil
	}
	v, err := p.value()
	if err == nil && v[0] != 'n' {
		m.problem(field, reasonInvalidMessage, "%s must be an object, not %s", field, kindName(v))
	}
	return nil, err
}

// time reads a timestamp field; null counts as absent.
func (p *parser) time(m *pending, field string) (time.Time, bool, error) {
	v, err := p.value()
	if err != nil {
		return time.Time{}, false, err
	}
	switch v[0] {
	case '"':
		if t, ok := parseTime(stringBytes(v, &p.scratch)); ok {
			return t, true, nil
		}
		m.problem(field, reasonInvalidTimestamp, "%s %q is not an RFC 3339 timestamp between the years 1700 and 2200", field, clip(unquote(v, &p.scratch)))
	case 'n':
	default:
		m.problem(field, reasonInvalidTimestamp, "%s must be an RFC 3339 string, not %s", field, kindName(v))
	}
	return time.Time{}, false, nil
}

// keep copies the raw JSON value v into the result, in clean form.
func (p *parser) keep(v []byte, clean bool) []byte {
	start := len(p.out)
	p.out = appendValue(p.out, v, clean)
	return p.out[start:len(p.out):len(p.out)]
}

// relevant reports whether a problem with field makes a message of type t invalid.
func relevant(field string, t custos.MessageType) bool {
	switch field {
	case "event":
		return t == custos.Track
	case "name":
		return t == custos.Page || t == custos.Screen
	case "groupId":
		return t == custos.Group
	case "previousId":
		return t == custos.Alias
	case "properties":
		return hasProperties(t)
	case "traits":
		return hasTraits(t)
	}
	return true
}

func hasProperties(t custos.MessageType) bool {
	return t == custos.Track || t == custos.Page || t == custos.Screen
}

func hasTraits(t custos.MessageType) bool { return t == custos.Identify || t == custos.Group }

// judge decides the type of msg and whether it is valid. It returns a
// reason and a message if it is not.
func (p *parser) judge(m *pending, msg *custos.Message) (reason, text string) {
	if m.size > p.limits.MaxMessage {
		return reasonTooLarge, fmt.Sprintf("message is %d bytes; the limit is %d", m.size, p.limits.MaxMessage)
	}
	if m.notObject != "" {
		return reasonInvalidMessage, "message is not a JSON object but " + m.notObject
	}
	t := msg.Type
	if !p.kind.Batch && p.kind.Type != "" {
		t = p.kind.Type
	}
	if t == "" {
		for _, pr := range m.problems {
			if pr.field == "type" {
				return pr.reason, pr.text
			}
		}
		if m.badType != "" {
			return reasonUnknownType, fmt.Sprintf("type %q is not one of track, identify, page, screen, group or alias", clip(m.badType))
		}
		return reasonUnknownType, "message has no type"
	}
	msg.Type = t
	for _, pr := range m.problems {
		if relevant(pr.field, t) {
			return pr.reason, pr.text
		}
	}
	switch {
	case t == custos.Alias && msg.PreviousID == "":
		return reasonMissingIdentity, "alias has no previousId"
	case t == custos.Alias && msg.UserID == "":
		return reasonMissingIdentity, "alias has no userId"
	case msg.UserID == "" && msg.AnonymousID == "":
		return reasonMissingIdentity, "message has neither userId nor anonymousId"
	case t == custos.Track && msg.Event == "":
		return reasonMissingEvent, "track has no event"
	case t == custos.Group && msg.GroupID == "":
		return reasonMissingGroupID, "group has no groupId"
	}
	for _, f := range [...]struct{ name, v string }{{"messageId", msg.MessageID}, {"userId", msg.UserID}, {"anonymousId", msg.AnonymousID},
		{"previousId", msg.PreviousID}, {"groupId", msg.GroupID}, {"event", msg.Event}, {"name", msg.Name}} {
		if len(f.v) > MaxIDLen {
			return reasonTooLarge, fmt.Sprintf("%s is %d bytes; the limit is %d", f.name, len(f.v), MaxIDLen)
		}
	}
	return "", ""
}

// normalize turns msg, valid, into its final form. It returns an error
// if the whole body must be refused.
func (p *parser) normalize(m *pending, msg *custos.Message) error {
	t := msg.Type
	if t != custos.Alias {
		msg.PreviousID = ""
	}
	if t != custos.Group {
		msg.GroupID = ""
	}
	if t != custos.Track {
		msg.Event = ""
	}
	if t != custos.Page && t != custos.Screen {
		msg.Name = ""
	}
	if !hasProperties(t) {
		msg.Properties = nil
	}
	if !hasTraits(t) {
		msg.Traits = nil
	}

	ctx, err := p.messageContext(m)
	if err != nil {
		return err
	}
	msg.Context = ctx.json
	if t == custos.Identify {
		if msg.Traits != nil {
			msg.Email = p.lookupOne(msg.Traits, "email")
		} else if ctx.traits != nil && ctx.traits[0] == '{' {
			msg.Traits = p.keep(ctx.traits, ctx.clean)
		}
	}
	if msg.Email == "" {
		msg.Email = ctx.email
	}
	msg.Email = custos.NormalizeEmail(msg.Email)
	msg.DeviceIDs = ctx.devices

	var original, sentAt *time.Time
	switch {
	case m.hasOriginal:
		original = &m.original
	case m.hasTimestamp:
		original = &m.timestamp
	}
	switch {
	case m.hasSentAt:
		sentAt = &m.sentAt
	case p.hasSentAt:
		sentAt = &p.batchSentAt
	}
	msg.Timestamp = eventTime(original, sentAt, p.received)
	msg.ReceivedAt = p.received
	if msg.MessageID == "" {
		msg.MessageID = derivedMessageID(msg, original, m.index)
	}
	return nil
}

// finish judges and normalises every message read. The valid messages
// are moved up in place, so the result is the slice they were read into.
func (p *parser) finish() (*Batch, error) {
	b := &Batch{WriteKey: p.writeKey}
	p.prepareBatchContext()
	valid := 0
	for i := range p.pending {
		m, msg := &p.pending[i], &p.msgs[i]
		if reason, text := p.judge(m, msg); reason != "" {
			b.Rejected = append(b.Rejected, Rejection{Index: m.index, Reason: reason, Message: text})
			continue
		}
		if err := p.normalize(m, msg); err != nil {
			return nil, err
		}
		if !inRange(msg.Timestamp) {
			// Each time was in range; a far-off sentAt moved it out.
			b.Rejected = append(b.Rejected, Rejection{Index: m.index, Reason: reasonInvalidTimestamp,
				Message: "timestamp corrected for clock skew by sentAt falls outside the years 1700 to 2200; check sentAt"})
			continue
		}
		if valid != i {
			p.msgs[valid] = *msg
		}
		valid++
	}
	clear(p.msgs[valid:]) // let the rejected go
	b.Messages = p.msgs[:valid]
	return b, nil
}

// derivedMessageID names a message that came without an id by a hash of
// its content and the time the client gave it, so that a client retrying
// the same batch is deduplicated as if it had sent ids. A message without
// a client timestamp is told apart by the server's time and its position
// in the batch: the same click sent three times is three events.
//
// The hash covers the context with its IP address truncated, whatever the
// tenant's setting: the id is kept with the event, and an unkeyed hash
// over the full address would let one who knows the rest of the message
// recover the part truncation removed.
func derivedMessageID(msg *custos.Message, original *time.Time, index int) string {
	h := sha256.New()
	for _, f := range [][]byte{[]byte(msg.Type), []byte(msg.UserID), []byte(msg.AnonymousID), []byte(msg.PreviousID),
		[]byte(msg.GroupID), []byte(msg.Event), []byte(msg.Name), msg.Properties, msg.Traits, TruncateContextIP(msg.Context)} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write(f)
	}
	if original != nil {
		h.Write([]byte(original.UTC().Format(time.RFC3339Nano)))
	} else {
		h.Write([]byte(msg.ReceivedAt.UTC().Format(time.RFC3339Nano)))
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(index)))
	}
	return "custos-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// clip shortens s for quoting in an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
