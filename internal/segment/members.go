package segment

import (
	"bytes"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Members calls fn with the name, as sent (quoted, escapes and all), and
// the raw value of each top-level member of the JSON object obj, in
// order, until fn returns false. It reports whether obj is an object
// whose members it could read to the closing brace (or to where fn
// stopped it).
//
// It is for objects Decode has already checked, such as a message's
// context, which are then read again for one member or two: it skips
// values by their brackets and quotes without decoding them, which costs
// a fraction of a jsontext.Decoder's full check. Input that is not
// well-formed JSON may be read differently from how a decoder would (it
// stops and reports false where it loses its way, having called fn for
// the members before), but never out of bounds.
func Members(obj []byte, fn func(name, value []byte) bool) bool {
	return members(obj, func(s memberSpan) bool {
		return fn(obj[s.nameStart:s.nameEnd], obj[s.valueStart:s.valueEnd])
	})
}

// members is Members giving where each member is in obj.
func members(obj []byte, fn func(memberSpan) bool) bool {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return true
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return false
		}
		end := skipString(obj, i)
		if end < 0 {
			return false
		}
		nameStart := i
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return false
		}
		i = skipSpace(obj, i+1)
		vend := skipValue(obj, i)
		if vend < 0 {
			return false
		}
		if !fn(memberSpan{int32(nameStart), int32(end), int32(i), int32(vend)}) {
			return true
		}
		i = skipSpace(obj, vend)
		if i >= len(obj) {
			return false
		}
		switch obj[i] {
		case ',':
			i = skipSpace(obj, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
}

// MemberName returns the text of a member's name as Members gives it, or
// of any JSON string as sent: the bytes themselves when there is nothing
// to unescape, else the unescaped text in scratch (invalid UTF-8 and lone
// surrogates become U+FFFD), valid until scratch's next use.
func MemberName(raw []byte, scratch *[]byte) []byte {
	if s := raw[1 : len(raw)-1]; bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return s
	}
	*scratch, _ = jsontext.AppendUnquote((*scratch)[:0], raw) // the error only reports what was replaced
	return *scratch
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the JSON string starting at b[i]
// (a quote), or -1 if it does not end.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++ // the escaped byte; a \u's digits need no care
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value starting at b[i], or
// -1 if there is none: strings by their quotes, objects and arrays by
// their brackets, anything else (numbers, literals) up to the next
// delimiter.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	start := i
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if i == start {
				return -1
			}
			return i
		}
		i++
	}
	if i == start {
		return -1
	}
	return i
}
