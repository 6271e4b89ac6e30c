package segment

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/custos-dev/custos"
)

func TestReadBody(t *testing.T) {
	json := []byte(`{"batch":[{"type":"track","userId":"u","event":"e"}]}`)
	max := DefaultLimits.MaxBatch
	noise := make([]byte, max+1000) // incompressible
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(noise)
	zipped := gzipBytes(t, json)
	corrupt := bytes.Clone(zipped)
	for i := 10; i < len(corrupt)-8; i++ { // the deflate stream, between header and trailer
		corrupt[i] = 0xff
	}
	badCRC := bytes.Clone(zipped)
	badCRC[len(badCRC)-8] ^= 0xff

	tests := []struct {
		name     string
		body     []byte
		encoding string
		want     []byte
		code     custos.Code
		message  string
	}{
		{name: "plain", body: json, want: json},
		{name: "identity", body: json, encoding: "identity", want: json},
		{name: "identity any case and spaced", body: json, encoding: " Identity ", want: json},
		{name: "gzip", body: zipped, encoding: "gzip", want: json},
		{name: "GZIP", body: zipped, encoding: "GZIP", want: json},
		{name: "x-gzip", body: zipped, encoding: "x-gzip", want: json},
		{name: "two gzip members", body: append(gzipBytes(t, json[:10]), gzipBytes(t, json[10:])...), encoding: "gzip", want: json},
		{name: "empty gzip body", body: nil, encoding: "gzip", want: []byte{}},
		{name: "empty", body: nil, want: []byte{}},
		{name: "exactly the limit", body: noise[:max], want: noise[:max]},
		{name: "exactly the limit gzipped", body: gzipBytes(t, bytes.Repeat([]byte{' '}, max)), encoding: "gzip", want: bytes.Repeat([]byte{' '}, max)},
		{name: "over the limit", body: noise[:max+1], code: custos.TooLarge, message: "body is larger than 512000 bytes"},
		{name: "over the limit gzipped", body: gzipBytes(t, bytes.Repeat([]byte{' '}, max+1)), encoding: "gzip", code: custos.TooLarge, message: "decompressed body is larger than 512000 bytes"},
		{name: "compressed over the limit", body: gzipBytes(t, noise), encoding: "gzip", code: custos.TooLarge, message: "compressed body is larger than 512000 bytes"},
		{name: "not gzip", body: json, encoding: "gzip", code: custos.Invalid, message: "body is not valid gzip: bad header"},
		{name: "truncated gzip", body: zipped[:len(zipped)-10], encoding: "gzip", code: custos.Invalid, message: "body is not valid gzip: the stream is truncated"},
		{name: "corrupt gzip", body: corrupt, encoding: "gzip", code: custos.Invalid, message: "body is not valid gzip: corrupt data"},
		{name: "gzip with a bad checksum", body: badCRC, encoding: "gzip", code: custos.Invalid, message: "body is not valid gzip: checksum mismatch"},
		{name: "unsupported encoding", body: json, encoding: "br", code: custos.Invalid, message: `unsupported Content-Encoding "br"; send gzip or identity`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadBody(bytes.NewReader(tt.body), tt.encoding, DefaultLimits)
			if tt.code != "" {
				if code, msg := custos.ErrorCode(err), custos.ErrorMessage(err); code != tt.code || msg != tt.message {
					t.Fatalf("ReadBody(%s, %q) error = %s: %s; want %s: %s", tt.name, tt.encoding, code, msg, tt.code, tt.message)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadBody(%s, %q): %v", tt.name, tt.encoding, err)
			}
			if !bytes.Equal(got, tt.want) || got == nil {
				t.Errorf("ReadBody(%s, %q) = %d bytes, want %d", tt.name, tt.encoding, len(got), len(tt.want))
			}
		})
	}
}

// TestReadBodyGzipBomb checks that a small body that expands enormously is
// refused after about MaxBatch bytes, without the memory it expands to.
func TestReadBodyGzipBomb(t *testing.T) {
	const expanded = 64 << 20 // 64 MiB of zeros: about 64 KB gzipped
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for range expanded / len(zero) {
		zw.Write(zero)
	}
	zw.Close()
	bomb := buf.Bytes()
	if len(bomb) > DefaultLimits.MaxBatch {
		t.Fatalf("bomb is %d bytes compressed; want it under the limit", len(bomb))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadBody(bytes.NewReader(bomb), "gzip", DefaultLimits)
	runtime.ReadMemStats(&after)
	if code := custos.ErrorCode(err); code != custos.TooLarge {
		t.Fatalf("ReadBody(gzip bomb of %d bytes) error = %v; want %s", len(bomb), err, custos.TooLarge)
	}
	// The compressed body, the decompressed one up to the limit, the gzip
	// reader's state: nothing like the 64 MiB the bomb expands to.
	allocated := after.TotalAlloc - before.TotalAlloc
	if limit := uint64(len(bomb)*2 + DefaultLimits.MaxBatch + 256<<10); allocated > limit {
		t.Errorf("ReadBody(gzip bomb of %d bytes) allocated %d bytes; want at most %d", len(bomb), allocated, limit)
	}
	t.Logf("ReadBody(gzip bomb of %d bytes) allocated %d bytes", len(bomb), allocated)
}

func TestReadBodyReaderErrors(t *testing.T) {
	broken := errors.New("connection reset")
	_, err := ReadBody(io.MultiReader(strings.NewReader("{"), iotestErrReader{broken}), "", DefaultLimits)
	if code := custos.ErrorCode(err); code != custos.Unavailable || !errors.Is(err, broken) {
		t.Errorf("ReadBody(broken reader) error = %v (%s); want %s wrapping %v", err, code, custos.Unavailable, broken)
	}

	rec := httptest.NewRecorder()
	limited := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(strings.Repeat("x", 100))), 10)
	_, err = ReadBody(limited, "", DefaultLimits)
	if code := custos.ErrorCode(err); code != custos.TooLarge {
		t.Errorf("ReadBody(http.MaxBytesReader over its limit) error = %v (%s); want %s", err, code, custos.TooLarge)
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }
