package segment

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// scan walks v, a JSON value the decoder has already checked, and returns
// how deeply it nests (0 for a scalar) and whether it is clean: compact,
// valid UTF-8 and free of escaped surrogates, so that it can be copied as
// it is instead of being reformatted.
//
// It is the one pass Decode makes over free-form JSON besides the
// decoder's, so it skips through strings eight bytes at a time.
func scan(v []byte) (depth int, clean bool) {
	clean = true
	d := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			i++
		str:
			for i < len(v) {
				for i+8 <= len(v) {
					// Mark the bytes that are '"', '\\' or not ASCII; the
					// lowest mark is exact (the usual has-zero-byte trick).
					x := binary.LittleEndian.Uint64(v[i:])
					q := x ^ 0x2222222222222222
					b := x ^ 0x5c5c5c5c5c5c5c5c
					if m := (x | (q-0x0101010101010101)&^q | (b-0x0101010101010101)&^b) & 0x8080808080808080; m != 0 {
						i += bits.TrailingZeros64(m) / 8
						break
					}
					i += 8
				}
				if i >= len(v) {
					break
				}
				switch c := v[i]; {
				case c == '"':
					break str
				case c == '\\':
					// \uD800-\uDFFF: a surrogate, paired or not. Reformatting
					// turns a pair into UTF-8 and a lone one into U+FFFD.
					if v[i+1] == 'u' && v[i+2]|0x20 == 'd' && v[i+3] >= '8' {
						clean = false
					}
					i += 2
				case c >= utf8.RuneSelf:
					r, n := utf8.DecodeRune(v[i:])
					if r == utf8.RuneError && n == 1 {
						clean = false
					}
					i += n
				default:
					i++
				}
			}
		case '{', '[':
			d++
			depth = max(depth, d)
		case '}', ']':
			d--
		case ' ', '\t', '\n', '\r':
			clean = false
		}
	}
	return depth, clean
}

// reformatOptions say how values that are not clean are rewritten:
// compact, with invalid UTF-8 and lone surrogates replaced by U+FFFD.
var reformatOptions = []jsontext.Options{jsontext.AllowInvalidUTF8(true)}

// appendValue appends the JSON value v, which the decoder has accepted, to
// dst in clean form.
func appendValue(dst, v []byte, clean bool) []byte {
	if clean {
		return append(dst, v...)
	}
	out, err := jsontext.AppendFormat(dst, v, reformatOptions...)
	if err != nil {
		// Unreachable: the decoder refuses all that reformatting would (it
		// even compares names with invalid UTF-8 already replaced). Should
		// it happen, null keeps the result valid.
		return append(dst, "null"...)
	}
	return out
}

// unquote returns the text of the JSON string v, with invalid UTF-8 and
// lone surrogates replaced by U+FFFD.
func unquote(v []byte, scratch *[]byte) string {
	return string(MemberName(v, scratch))
}

// stringBytes returns the text of the JSON string v like unquote, but
// without allocating when v has no escapes. The result is only valid until
// the next use of scratch.
func stringBytes(v []byte, scratch *[]byte) []byte {
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s
	}
	*scratch, _ = jsontext.AppendUnquote((*scratch)[:0], v)
	return *scratch
}

// numberText returns the decimal text of the JSON number v: integers as
// written, so that ids longer than a float64 keeps stay exact; other
// numbers in their shortest plain decimal form ("1e3" becomes "1000").
func numberText(v []byte) (string, bool) {
	digits := v
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	integer := true
	for _, c := range digits {
		if c < '0' || c > '9' {
			integer = false
			break
		}
	}
	if integer {
		return string(v), true
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return "", false
	}
	return strconv.FormatFloat(f, 'f', -1, 64), true
}

// kindName names the JSON kind of a value for error messages.
func kindName(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
