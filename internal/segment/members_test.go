package segment

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// decoderMembers lists obj's top-level members as a jsontext.Decoder reads
// them (names unescaped, values raw), and whether obj is one object.
func decoderMembers(obj []byte) ([]string, bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(obj), jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, false
	}
	var got []string
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil, false
		}
		n := name.String()
		v, err := dec.ReadValue()
		if err != nil {
			return nil, false
		}
		got = append(got, fmt.Sprintf("%s=%s", n, v))
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, false
	}
	if _, err := dec.ReadToken(); err == nil {
		return nil, false // more than one value
	}
	return got, true
}

// scannedMembers lists obj's members as Members reads them.
func scannedMembers(obj []byte) ([]string, bool) {
	var got []string
	var scratch []byte
	ok := Members(obj, func(name, v []byte) bool {
		got = append(got, fmt.Sprintf("%s=%s", MemberName(name, &scratch), v))
		return true
	})
	return got, ok
}

func TestMembers(t *testing.T) {
	for _, in := range []string{
		`{}`, ` { } `,
		`{"ip":"203.0.113.7","library":{"name":"x","version":"1"}}`,
		`{"a":1,"b":-2.5e3,"c":true,"d":null,"e":[1,[2,{"f":"}"}]],"g":{}}`,
		"{\n\t\"a\" : \"x\\\"}\" ,\r\n \"b\":[ \"]\" , \"\\\\\" ] }",
		`{"\u0069p":"1.2.3.4","na\"me":"v","":""}`,
		`{"a":"é","b":"\ud83d\ude00"}`,
		`{"a":1,"a":2}`,
	} {
		want, ok := decoderMembers([]byte(in))
		if !ok {
			t.Fatalf("%s: not an object to a decoder", in)
		}
		got, gotOK := scannedMembers([]byte(in))
		if !gotOK || strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("Members(%s) = %q, %v; a decoder reads %q", in, got, gotOK, want)
		}
	}
	// What is not an object, or is cut short, is refused without a panic.
	for _, in := range []string{``, `[1]`, `"x"`, `{`, `{"a"`, `{"a":`, `{"a":}`, `{"a":1`, `{"a":1,`, `{"a":"x`, `{"a":{"b":1}`, `{"a":[1,2}`, `{1:2}`, `{"a" 1}`, `{"a":1 "b":2}`} {
		if got, ok := scannedMembers([]byte(in)); ok {
			t.Errorf("Members(%s) = %q, true; want false", in, got)
		}
	}
	// fn stops the walk.
	var names []string
	ok := Members([]byte(`{"a":1,"b":2,"c":3}`), func(name, _ []byte) bool {
		names = append(names, string(name))
		return len(names) < 2
	})
	if !ok || strings.Join(names, ",") != `"a","b"` {
		t.Errorf("stopped walk read %v, %v; want \"a\",\"b\", true", names, ok)
	}
}

// FuzzMembers checks Members against a jsontext.Decoder: on every object
// the decoder reads, the same members; on anything, no panic.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{"ip":"1.2.3.4","page":{"path":"/a"}}`, `{"a":[{"b":"]"}],"c":"\""}`, `{"\u0069p":1}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, obj []byte) {
		got, gotOK := scannedMembers(obj)
		want, ok := decoderMembers(obj)
		if ok && (!gotOK || strings.Join(got, "\x00") != strings.Join(want, "\x00")) {
			t.Errorf("Members(%q) = %q, %v; a decoder reads %q", obj, got, gotOK, want)
		}
	})
}

// BenchmarkTruncateContextIP reads a context as the load generator's web
// messages carry it, with an address to truncate.
func BenchmarkTruncateContextIP(b *testing.B) {
	ctx := []byte(`{"library":{"name":"analytics.js","version":"5.2.0"},"page":{"path":"/products/trail-shoe"},"ip":"203.0.113.42","locale":"de-DE","userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"}`)
	b.ReportAllocs()
	for b.Loop() {
		if out := TruncateContextIP(ctx); len(out) != len(ctx)-1 {
			b.Fatalf("TruncateContextIP = %s", out)
		}
	}
}
