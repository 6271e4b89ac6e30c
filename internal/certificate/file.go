package certificate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// Marshal returns the file form of c: indented JSON ending in a newline,
// with times in UTC and absent maps and recipients written as empty, as
// Parse requires.
func Marshal(c Certificate) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(normalize(c)); err != nil {
		return nil, fmt.Errorf("marshal certificate %s: %w", c.RequestID, err)
	}
	return buf.Bytes(), nil
}

// Parse reads a certificate file. It is strict, so that an edited file
// cannot show a reader one thing and have another verified: besides
// malformed JSON and wrong types it refuses text that is not UTF-8, any
// key that is not exactly a field name (unknown, or differing only in
// case), a key repeated in one object, a missing field (only a
// recipient's "at" and "detail" may be left out), null, a time not in UTC
// RFC 3339 form as Marshal writes it, anything after the certificate, a
// version other than 1 or 2, and purge_due_at in a version 1 file. Parse does not check the signature: see Verify
// and VerifyFile. Errors are *custos.Error with code Invalid.
func Parse(b []byte) (Certificate, error) {
	if !utf8.Valid(b) {
		return Certificate{}, custos.Errorf(custos.Invalid, "certificate file is not valid UTF-8")
	}
	if !bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{")) {
		return Certificate{}, custos.Errorf(custos.Invalid, "not a certificate file: want a JSON object")
	}
	// The version first, leniently, so a newer file is refused for what it
	// is rather than for the fields it adds.
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&v); err != nil {
		return Certificate{}, fileError(b, err)
	}
	if v.Version == nil {
		return Certificate{}, custos.Errorf(custos.Invalid, "not a certificate file: it has no version")
	}
	if _, ok := domains[*v.Version]; !ok {
		return Certificate{}, unsupported(*v.Version)
	}

	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := checkValue(dec, reflect.TypeFor[Certificate](), "certificate"); err != nil {
		return Certificate{}, fileError(b, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("more data after the certificate")
		}
		return Certificate{}, fileError(b, err)
	}

	var c Certificate
	dec = json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Certificate{}, fileError(b, err)
	}
	var due struct {
		At *string `json:"purge_due_at"`
	}
	if err := json.Unmarshal(b, &due); err != nil {
		return Certificate{}, fileError(b, err)
	}
	if c.Version == 1 && due.At != nil {
		// Version 1 signatures do not cover it: a reader must not be shown it.
		return Certificate{}, custos.Errorf(custos.Invalid, "certificate file: purge_due_at needs version 2")
	}
	return c, nil
}

// VerifyFile parses a certificate file and verifies it against the public
// key in publicKeyPEM (a PEM "PUBLIC KEY" block, as audit.PublicKeyPEM
// writes it). It returns the certificate only if it verifies.
func VerifyFile(certJSON, publicKeyPEM []byte) (Certificate, error) {
	pub, err := audit.ParsePublicKeyPEM(publicKeyPEM)
	if err != nil {
		return Certificate{}, fmt.Errorf("public key: %w", err)
	}
	c, err := Parse(certJSON)
	if err != nil {
		return Certificate{}, err
	}
	if err := Verify(c, pub); err != nil {
		return Certificate{}, err
	}
	return c, nil
}

// fileError makes err, from reading the file b, a caller-safe Invalid
// error that names the line where the JSON decoder found it, if known.
func fileError(b []byte, err error) error {
	var off int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var pos *positionError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	case errors.As(err, &pos):
		off = pos.offset
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return custos.Errorf(custos.Invalid, "certificate file is truncated")
	}
	if off >= 0 && off <= int64(len(b)) {
		line := 1 + bytes.Count(b[:off], []byte("\n"))
		return custos.Errorf(custos.Invalid, "certificate file, line %d: %v", line, err)
	}
	return custos.Errorf(custos.Invalid, "certificate file: %v", err)
}

// positionError is a finding of checkValue at a byte offset of the file.
type positionError struct {
	offset int64
	msg    string
}

func (e *positionError) Error() string { return e.msg }

var timeType = reflect.TypeFor[time.Time]()

// checkValue reads the next JSON value from dec, which is to be decoded
// into a t at path, and refuses what encoding/json would accept without a
// word but a reader of the file could be misled by: null, a key repeated
// in an object, a key that is not exactly a field name, a missing field,
// and a time not in the form Marshal writes. Type mismatches are left to
// the decoder.
func checkValue(dec *json.Decoder, t reflect.Type, path string) error {
	fail := func(format string, args ...any) error {
		return &positionError{dec.InputOffset(), path + ": " + fmt.Sprintf(format, args...)}
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok := tok.(type) {
	case nil:
		return fail("null is not allowed")
	case string:
		if t == timeType {
			tm, err := time.Parse(time.RFC3339Nano, tok)
			if err != nil || tm.UTC().Format(time.RFC3339Nano) != tok {
				return fail("%q is not a time in UTC RFC 3339 form, like %q", tok, "2026-02-28T10:00:00Z")
			}
		}
		return nil
	case json.Delim:
		if tok == '[' {
			if t.Kind() != reflect.Slice {
				return fail("an array, want %s", kindName(t))
			}
			for i := 0; dec.More(); i++ {
				if err := checkValue(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
			_, err := dec.Token() // ']'
			return err
		}
		return checkObject(dec, t, path, fail)
	}
	return nil // a number or a boolean
}

// checkObject is checkValue for an object, its '{' already read.
func checkObject(dec *json.Decoder, t reflect.Type, path string, fail func(string, ...any) error) error {
	var fields []reflect.StructField
	switch {
	case t.Kind() == reflect.Map:
	case t.Kind() == reflect.Struct && t != timeType:
		fields = jsonFields(t)
	default:
		return fail("an object, want %s", kindName(t))
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string) // the decoder allows nothing else here
		if seen[key] {
			return fail("key %q appears twice", key)
		}
		seen[key] = true
		var elem reflect.Type
		if t.Kind() == reflect.Map {
			elem = t.Elem()
		} else if i := slices.IndexFunc(fields, func(f reflect.StructField) bool { return f.Name == key }); i >= 0 {
			elem = fields[i].Type
		} else {
			return fail("unknown field %q", key)
		}
		if err := checkValue(dec, elem, path+"."+key); err != nil {
			return err
		}
	}
	for _, f := range fields {
		if !seen[f.Name] && !strings.Contains(f.Tag.Get("json"), ",omit") {
			return fail("field %q is missing", f.Name)
		}
	}
	_, err := dec.Token() // '}'
	return err
}

// jsonFields returns the fields of struct type t in order, each with Name
// set to its JSON name.
func jsonFields(t reflect.Type) []reflect.StructField {
	var fields []reflect.StructField
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name != "" {
			f.Name = name
		}
		fields = append(fields, f)
	}
	return fields
}

// kindName names the JSON value a t is decoded from.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct:
		if t == timeType {
			return "a time string"
		}
		return "an object"
	case reflect.Map:
		return "an object"
	case reflect.Slice:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	}
	return "a number"
}
