package segment

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/custos-dev/custos"
)

// ReadBody reads an HTTP request body, gunzipping it when contentEncoding
// is "gzip" (or "x-gzip"; any case; "identity" and "" mean no encoding).
//
// It refuses with a TooLarge *custos.Error when the body, compressed or
// decompressed, exceeds limits.MaxBatch, and with an Invalid one for a
// corrupt gzip stream or an unsupported encoding. It stops reading as soon
// as the limit is passed, so a gzip bomb costs about MaxBatch bytes of
// memory, never the size it expands to. A failure of r itself is reported
// as Unavailable, since a broken connection is worth retrying.
func ReadBody(r io.Reader, contentEncoding string, limits Limits) ([]byte, error) {
	limits = limits.orDefault()
	switch enc := strings.TrimSpace(contentEncoding); {
	case enc == "", strings.EqualFold(enc, "identity"):
		b, err := readAll(r, limits.MaxBatch, 0)
		if err != nil {
			return nil, bodyReadError(err, "body", limits.MaxBatch)
		}
		return b, nil
	case strings.EqualFold(enc, "gzip"), strings.EqualFold(enc, "x-gzip"):
		return gunzip(r, limits.MaxBatch)
	default:
		return nil, custos.Errorf(custos.Invalid, "unsupported Content-Encoding %q; send gzip or identity", contentEncoding)
	}
}

// errTooLarge is readAll's signal that the input passed its limit.
var errTooLarge = errors.New("over the limit")

// gunzip reads a gzip stream of at most limit compressed bytes and returns
// at most limit decompressed bytes.
func gunzip(r io.Reader, limit int) ([]byte, error) {
	compressed, err := readAll(r, limit, 0)
	if err != nil {
		return nil, bodyReadError(err, "compressed body", limit)
	}
	if len(compressed) == 0 {
		return compressed, nil // an empty body, whatever the header said
	}
	zr, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, &custos.Error{Code: custos.Invalid, Message: "body is not valid gzip: " + gzipProblem(err), Err: err}
	}
	// The trailer's ISIZE is the (claimed) size of the last member: a good
	// first guess that saves growing the buffer. It is only a hint; a lying
	// one costs nothing since readAll never goes past limit.
	hint := 0
	if n := len(compressed); n >= 4 {
		hint = int(binary.LittleEndian.Uint32(compressed[n-4:])) + 1
	}
	b, err := readAll(zr, limit, hint)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, custos.Errorf(custos.TooLarge, "decompressed body is larger than %d bytes", limit)
		}
		return nil, &custos.Error{Code: custos.Invalid, Message: "body is not valid gzip: " + gzipProblem(err), Err: err}
	}
	return b, nil
}

// gzipProblem names what is wrong with a gzip stream in words a client can act on.
func gzipProblem(err error) string {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the stream is truncated"
	case errors.Is(err, gzip.ErrHeader):
		return "bad header"
	case errors.Is(err, gzip.ErrChecksum):
		return "checksum mismatch"
	}
	return "corrupt data"
}

// bodyReadError turns a failure of readAll on the client's stream into a *custos.Error.
func bodyReadError(err error, what string, limit int) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errTooLarge):
		return custos.Errorf(custos.TooLarge, "%s is larger than %d bytes", what, limit)
	case errors.As(err, &mbe):
		return &custos.Error{Code: custos.TooLarge, Message: "body is larger than the server accepts", Err: err}
	}
	return &custos.Error{Code: custos.Unavailable, Message: "could not read the request body", Err: err}
}

// readAll reads r to the end and returns what it read, or errTooLarge as
// soon as r holds more than limit bytes: its buffer never grows past
// limit+1 bytes. hint, if positive, is the expected size plus one.
func readAll(r io.Reader, limit, hint int) ([]byte, error) {
	size := 16 << 10
	if hint > 0 {
		size = max(hint, 512)
	}
	size = min(size, limit+1)
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, errTooLarge
			}
			grown := make([]byte, len(buf), min(2*cap(buf), limit+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return nil, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
