package segment

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/custos-dev/custos"
	"github.com/go-json-experiment/json/jsontext"
)

// Rejection is one message refused on its own; the rest of its batch is
// still accepted.
type Rejection struct {
	// Index is the message's position in the incoming batch (0 for a
	// single-message path).
	Index int `json:"index"`
	// Reason is a stable code: "unknown_type", "missing_identity",
	// "missing_event", "missing_group_id", "message_too_large",
	// "invalid_message" or "invalid_timestamp".
	Reason string `json:"reason"`
	// Message says what is wrong, naming the field.
	Message string `json:"message"`
}

// Batch is a decoded body: the valid messages and the rejected ones.
type Batch struct {
	// WriteKey is the body's "writeKey" (for a batch, the batch-level one,
	// else the first one a message carries), or "" if it has none.
	WriteKey string
	// Messages are the valid messages, in the order they came.
	Messages []custos.Message
	// Rejected are the messages invalid on their own, in the order they came.
	Rejected []Rejection
}

// Rejection reasons.
const (
	reasonUnknownType      = "unknown_type"
	reasonMissingIdentity  = "missing_identity"
	reasonMissingEvent     = "missing_event"
	reasonMissingGroupID   = "missing_group_id"
	reasonTooLarge         = "message_too_large"
	reasonInvalidMessage   = "invalid_message"
	reasonInvalidTimestamp = "invalid_timestamp"
)

// decodeOptions accept invalid UTF-8, which real clients send now and then
// (lone surrogates from JavaScript strings), and keep refusing duplicate
// member names, which would let two readers of one event disagree on, say,
// its userId.
var decodeOptions = []jsontext.Options{jsontext.AllowInvalidUTF8(true)}

// Decode parses body as JSON, whatever the request's Content-Type said,
// for the given kind of path, and returns its valid messages and its
// rejected ones. receivedAt is the server's clock when the body arrived.
//
// A body that cannot be read as a whole — not JSON, not an object, a batch
// without a "batch" array, over limits.MaxBatch bytes or limits.MaxMessages
// messages, nested deeper than limits.MaxDepth — yields a *custos.Error
// (Invalid or TooLarge) whose Message names the problem. Duplicate member
// names anywhere count as not JSON; invalid UTF-8, which real clients do
// send, does not: it is replaced by U+FFFD. A single-message body that is an
// object but not a valid message is not an error: it comes back as one
// Rejection. A kind with an unknown Type is a bug in the caller (Internal).
//
// The returned messages do not share memory with body, which the caller
// may reuse at once.
func Decode(body []byte, kind Kind, receivedAt time.Time, limits Limits) (*Batch, error) {
	limits = limits.orDefault()
	if _, ok := messageType([]byte(kind.Type)); !kind.Batch && kind.Type != "" && !ok {
		return nil, &custos.Error{Code: custos.Internal, Message: "internal error", Err: fmt.Errorf("segment.Decode: unknown message type %q", kind.Type)}
	}
	if limit := min(limits.MaxBatch, math.MaxInt32); len(body) > limit { // offsets into body are int32
		return nil, custos.Errorf(custos.TooLarge, "body is %d bytes; the limit is %d", len(body), limit)
	}
	p := &parser{body: body, kind: kind, limits: limits, received: receivedAt}
	// Most of the body ends up in the result, and most messages are a few
	// hundred bytes: sizes that spare the slices most of their growing.
	p.out = make([]byte, 0, len(body)+len(body)/8+64)
	n := min(len(body)/512+1, limits.MaxMessages)
	p.msgs = make([]custos.Message, 0, n)
	p.pending = make([]pending, 0, n)
	p.spans = make([]memberSpan, 0, len(body)/128)
	p.in = *bytes.NewBuffer(body)
	p.dec.Reset(&p.in, decodeOptions...)
	if err := p.parse(); err != nil {
		return nil, p.bodyError(err)
	}
	return p.finish()
}

// parser holds the state of one Decode call.
type parser struct {
	body     []byte
	kind     Kind
	limits   Limits
	received time.Time

	in  bytes.Buffer // body, read in place by dec
	dec jsontext.Decoder

	sub    bytes.Buffer // a value looked into by subDec
	subDec jsontext.Decoder

	// out holds every raw JSON value of the result, back to back, so that
	// a batch costs one growing allocation instead of one per value.
	out []byte

	msgs       []custos.Message // every message seen, valid or not, in order
	pending    []pending        // what was noted about each of msgs
	spans      []memberSpan     // the members of every context object read
	ownMembers []member         // a message context's members, while merging

	batch       batchContext // the batch-level context
	batchSentAt time.Time
	hasSentAt   bool
	writeKey    string // the batch-level writeKey
	msgWriteKey string // the first writeKey a message carries

	nameBuf []byte // unescaped member names
	scratch []byte // unescaped string values
}

// parse reads the whole body into p.pending and the batch-level fields.
func (p *parser) parse() error {
	switch k := p.dec.PeekKind(); k {
	case '{':
	case 0:
		_, err := p.dec.ReadToken()
		if err == io.EOF {
			return custos.Errorf(custos.Invalid, "body is empty")
		}
		return err
	default:
		// Read it first: "nope" looks like null to PeekKind, but it is not JSON.
		v, err := p.dec.ReadValue()
		if err == nil {
			err = p.checkEOF()
		}
		if err != nil {
			return err
		}
		return custos.Errorf(custos.Invalid, "body is not a JSON object but %s", kindName(v))
	}
	var err error
	if p.kind.Batch {
		err = p.batchObject()
	} else {
		err = p.message(0)
		p.writeKey = p.msgWriteKey
	}
	if err != nil {
		return err
	}
	return p.checkEOF()
}

// checkEOF refuses anything but whitespace after the top-level value.
func (p *parser) checkEOF() error {
	end := p.dec.InputOffset()
	if _, err := p.dec.ReadToken(); err != io.EOF {
		if err != nil {
			return err
		}
		return custos.Errorf(custos.Invalid, "body is not JSON: unexpected data after the top-level value at offset %d", end)
	}
	return nil
}

// batchObject reads a batch body: {"batch": [...], "context": {...}, ...}.
func (p *parser) batchObject() error {
	if _, err := p.dec.ReadToken(); err != nil {
		return err
	}
	sawBatch := false
	for p.dec.PeekKind() != '}' {
		name, _, err := p.name()
		if err != nil {
			return err
		}
		if string(name) == "batch" && p.dec.PeekKind() == '[' {
			sawBatch = true
			err = p.messages()
		} else {
			err = p.batchField(name)
		}
		if err != nil {
			return err
		}
	}
	if _, err := p.dec.ReadToken(); err != nil {
		return err
	}
	if !sawBatch {
		return custos.Errorf(custos.Invalid, `body has no "batch" array`)
	}
	if p.writeKey == "" {
		p.writeKey = p.msgWriteKey
	}
	return nil
}

// batchField reads the value of a batch-level member other than the batch
// array. Unknown members are skipped; known ones of the wrong kind make the
// whole body invalid, since they concern every message.
func (p *parser) batchField(name []byte) error {
	if string(name) == "context" && p.dec.PeekKind() == '{' {
		return p.context(&p.batch.info)
	}
	v, err := p.value()
	if err != nil {
		return err
	}
	switch string(name) {
	case "batch":
		if v[0] != 'n' {
			return custos.Errorf(custos.Invalid, `"batch" must be an array, not %s`, kindName(v))
		}
	case "context":
		if v[0] != 'n' {
			return custos.Errorf(custos.Invalid, `batch "context" must be an object, not %s`, kindName(v))
		}
	case "sentAt":
		switch v[0] {
		case 'n':
		case '"':
			t, ok := parseTime(stringBytes(v, &p.scratch))
			if !ok {
				return custos.Errorf(custos.Invalid, "batch sentAt %q is not an RFC 3339 timestamp between the years 1700 and 2200", clip(unquote(v, &p.scratch)))
			}
			p.batchSentAt, p.hasSentAt = t, true
		default:
			return custos.Errorf(custos.Invalid, "batch sentAt must be an RFC 3339 string, not %s", kindName(v))
		}
	case "writeKey":
		switch v[0] {
		case 'n':
		case '"':
			p.writeKey = unquote(v, &p.scratch)
		default:
			return custos.Errorf(custos.Invalid, "writeKey must be a string, not %s", kindName(v))
		}
	}
	return nil
}

// messages reads the batch array, one message at a time.
func (p *parser) messages() error {
	if _, err := p.dec.ReadToken(); err != nil {
		return err
	}
	if err := p.checkDepth(); err != nil {
		return err
	}
	n := 0
	for p.dec.PeekKind() != ']' {
		if n == p.limits.MaxMessages {
			// Count the rest, so that the error says how many there are.
			for ; p.dec.PeekKind() != ']'; n++ {
				if _, err := p.value(); err != nil {
					return err
				}
			}
			return custos.Errorf(custos.TooLarge, "batch has %d messages; the limit is %d", n, p.limits.MaxMessages)
		}
		if err := p.message(n); err != nil {
			return err
		}
		n++
	}
	_, err := p.dec.ReadToken()
	return err
}

// name reads an object member's name. It returns the name's text and the
// quoted name as it appears in the body. The text is only valid until the
// next call.
func (p *parser) name() (name, raw []byte, err error) {
	v, err := p.dec.ReadValue()
	if err != nil {
		return nil, nil, err
	}
	end := int(p.dec.InputOffset())
	raw = p.body[end-len(v) : end : end]
	name = raw[1 : len(raw)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		p.nameBuf, _ = jsontext.AppendUnquote(p.nameBuf[:0], raw)
		name = p.nameBuf
	}
	return name, raw, nil
}

// value reads the next value and checks that it does not nest too deeply.
// The result is a slice of the body.
func (p *parser) value() ([]byte, error) {
	v, err := p.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	end := int(p.dec.InputOffset())
	v = p.body[end-len(v) : end : end]
	if v[0] == '{' || v[0] == '[' {
		// Nesting k levels takes at least 2k bytes: most values are too
		// short to need the scan.
		if room := p.limits.MaxDepth - p.dec.StackDepth(); len(v)/2 > room {
			if depth, _ := scan(v); depth > room {
				return nil, p.depthError()
			}
		}
	}
	return v, nil
}

// rawValue reads the next value like value, and also reports whether it
// is clean (see scan).
func (p *parser) rawValue() (v []byte, clean bool, err error) {
	v, err = p.dec.ReadValue()
	if err != nil {
		return nil, false, err
	}
	end := int(p.dec.InputOffset())
	v = p.body[end-len(v) : end : end]
	depth, clean := scan(v)
	if depth > p.limits.MaxDepth-p.dec.StackDepth() {
		return nil, false, p.depthError()
	}
	return v, clean, nil
}

// checkDepth refuses the body if the object or array just opened is too deep.
func (p *parser) checkDepth() error {
	if p.dec.StackDepth() > p.limits.MaxDepth {
		return p.depthError()
	}
	return nil
}

func (p *parser) depthError() error {
	return custos.Errorf(custos.Invalid, "body nests objects and arrays deeper than %d levels (within %q)", p.limits.MaxDepth, clip(string(p.dec.StackPointer())))
}

// bodyError turns what went wrong reading the body into a *custos.Error
// that names the problem and where it is.
func (p *parser) bodyError(err error) error {
	var ce *custos.Error
	if errors.As(err, &ce) {
		return ce
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		if strings.Contains(se.Err.Error(), "exceeded max depth") { // the decoder's own limit, far past ours
			return &custos.Error{Code: custos.Invalid, Message: fmt.Sprintf("body nests objects and arrays deeper than %d levels", p.limits.MaxDepth), Err: err}
		}
		// jsontext says it best (it names a duplicate member, for one), but
		// in its own words: "jsontext: ... at start of value ... after offset N".
		what := strings.TrimPrefix(se.Error(), "jsontext: ")
		if i := strings.LastIndex(what, " after offset "); i >= 0 {
			what = what[:i]
		}
		what = strings.Replace(what, " at start of value", "", 1)
		what = strings.Replace(what, "unexpected EOF", "unexpected end of input", 1)
		return &custos.Error{Code: custos.Invalid, Message: fmt.Sprintf("body is not JSON: %s at offset %d", what, se.ByteOffset), Err: err}
	}
	return &custos.Error{Code: custos.Invalid, Message: "body is not JSON", Err: err}
}
