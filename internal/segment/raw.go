package segment

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// strByte marks the bytes that end a fast run inside a JSON string.
var strByte = func() (t [256]bool) {
	t['"'], t['\\'] = true, true
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	return t
}()

// scan walks v, a JSON value the decoder has already checked, and returns
// how deeply it nests (0 for a scalar) and whether it is clean: compact,
// valid UTF-8 and free of escaped surrogates, so that it can be copied as
// it is instead of being reformatted.
func scan(v []byte) (depth int, clean bool) {
	clean = true
	d := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			for i++; i < len(v); i++ {
				c := v[i]
				if !strByte[c] {
					continue
				}
				if c == '"' {
					break
				}
				if c == '\\' {
					i++
					// \uD800-\uDFFF: a surrogate, paired or not. Reformatting
					// turns a pair into UTF-8 and a lone one into U+FFFD.
					if v[i] == 'u' && v[i+1]|0x20 == 'd' && v[i+2] >= '8' {
						clean = false
					}
					continue
				}
				r, n := utf8.DecodeRune(v[i:])
				if r == utf8.RuneError && n == 1 {
					clean = false
				}
				i += n - 1
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
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s)
	}
	b, _ := jsontext.AppendUnquote((*scratch)[:0], v) // the error only reports what was replaced
	*scratch = b
	return string(b)
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
