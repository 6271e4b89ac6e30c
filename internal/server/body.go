package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/custos-dev/custos"
)

// maxBody bounds a JSON request body of the management and operator APIs.
const maxBody = 1 << 20

// readBody reads a whole request body of at most limit bytes. A longer
// body is TooLarge (413) whatever its content; a body that cannot be read
// is Invalid.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, custos.Errorf(custos.TooLarge, "request body is larger than %d bytes", limit)
	}
	if err != nil {
		return nil, custos.Errorf(custos.Invalid, "request body could not be read: %v", err)
	}
	return b, nil
}

// decodeBody reads a JSON request body of at most limit bytes into a T.
// It refuses, naming the problem: a body over the limit (413), an empty
// body, a field T does not have, a value of the wrong type, and anything
// after the JSON value.
func decodeBody[T any](w http.ResponseWriter, r *http.Request, limit int64) (T, error) {
	var v T
	b, err := readBody(w, r, limit)
	if err != nil {
		return v, err
	}
	return v, decodeJSONBytes(b, &v)
}

// decodeOptionalBody is decodeBody for a body that may be left out: an
// empty body gives the zero T.
func decodeOptionalBody[T any](w http.ResponseWriter, r *http.Request, limit int64) (T, error) {
	var v T
	b, err := readBody(w, r, limit)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return v, err
	}
	return v, decodeJSONBytes(b, &v)
}

// decodeJSONBytes decodes exactly one JSON value from b into v, refusing
// unknown fields and trailing data.
func decodeJSONBytes(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return custos.Errorf(custos.Invalid, "request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return custos.Errorf(custos.Invalid, "request body: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return custos.Errorf(custos.Invalid, "request body: unexpected data after the JSON value at byte %d", dec.InputOffset())
	}
	return nil
}

// describeJSONError words a decoding error for the client.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %s must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Sprintf("must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON value is cut short"
	}
	// encoding/json says `json: unknown field "x"`; drop its prefix.
	msg := err.Error()
	if len(msg) > 6 && msg[:6] == "json: " {
		msg = msg[6:]
	}
	return msg
}

// jsonKind names a Go kind as the JSON type a client sends for it.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a " + k
}
