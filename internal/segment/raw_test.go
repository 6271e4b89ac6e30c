package segment

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

var scanTests = []struct {
	in    string
	depth int
	clean bool
}{
	{`1`, 0, true},
	{`"a"`, 0, true},
	{`""`, 0, true},
	{`{}`, 1, true},
	{`[[],{"a":[{}]}]`, 4, true},
	{`{"a":"]]]]}}}}[[[{"}`, 1, true},
	{`{"a":"\"]"}`, 1, true},
	{`{"a":"\\"}`, 1, true},
	{`{"a":"a long string with spaces, and more than eight bytes"}`, 1, true},
	{`{"a":"\u00e9\u003c"}`, 1, true},
	{"{\"a\":\"caf\u00e9 \U0001F600\"}", 1, true},
	{`{"a": 1}`, 1, false},
	{"{\"a\":1}\n", 1, false},
	{"[1,\t2]", 1, false},
	{`{"a":"\ud83d\ude00"}`, 1, false},
	{`{"a":"\uDC00"}`, 1, false},
	{`{"a":"\ud7ff"}`, 1, true},
	{"{\"a\":\"\xff\"}", 1, false},
	{"{\"abcdefghijklmn\xff\":1}", 1, false},
	{"\"abcdefg\xc3\"", 0, false},
}

func TestScan(t *testing.T) {
	for _, tt := range scanTests {
		depth, clean := scan([]byte(tt.in))
		if depth != tt.depth || clean != tt.clean {
			t.Errorf("scan(%q) = %d, %v; want %d, %v", tt.in, depth, clean, tt.depth, tt.clean)
		}
	}
}

// FuzzScan checks scan against the decoder: the depth it reaches, and
// whether reformatting would change anything.
func FuzzScan(f *testing.F) {
	for _, tt := range scanTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if !jsontext.Value(v).IsValid(jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)) {
			return // scan only sees what the decoder accepted
		}
		depth, clean := scan(v)
		if want := maxDepth(t, v); depth != want {
			t.Errorf("scan(%q) depth = %d, want %d", v, depth, want)
		}
		// Clean means: compact, valid UTF-8, and no surrogate escapes.
		compact := jsontext.Value(bytes.Clone(v))
		compact.Compact(jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
		want := bytes.Equal(compact, v) && utf8.Valid(v) && !hasSurrogateEscape(v)
		if clean != want {
			t.Errorf("scan(%q) clean = %v, want %v", v, clean, want)
		}
	})
}

func maxDepth(t *testing.T, v []byte) int {
	d := jsontext.NewDecoder(bytes.NewReader(v), jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
	most := 0
	for {
		if _, err := d.ReadToken(); err != nil {
			return most
		}
		most = max(most, d.StackDepth())
	}
}

// hasSurrogateEscape reports whether v has \uD800-\uDFFF inside a string.
// Outside strings there are no backslashes in valid JSON.
func hasSurrogateEscape(v []byte) bool {
	for i := 0; i+5 < len(v); i++ {
		if v[i] == '\\' {
			if v[i+1] == 'u' && v[i+2]|0x20 == 'd' && v[i+3] >= '8' {
				return true
			}
			i++ // skip the escaped character, which may be a backslash
		}
	}
	return false
}
