package loadgen

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
)

// A sender sends one request at a time, reusing its buffers: once warm it
// allocates little besides what net/http does.
type sender struct {
	server, writeKey string
	gen              *generator
	client           *http.Client
	st               *stats

	buf  []byte
	zbuf bytes.Buffer
	zw   *gzip.Writer // nil without gzip

	// held counts request bodies the transport has not closed yet. The
	// transport may go on reading a body after Do returns (when the
	// server answers before reading it all), so buf is reused only once
	// held is zero.
	held sync.WaitGroup
}

func newSender(cfg Config, gen *generator, client *http.Client, st *stats) *sender {
	s := &sender{server: cfg.Server, writeKey: cfg.WriteKey, gen: gen, client: client, st: st}
	if cfg.Gzip {
		// The fastest level: the generator must stay cheap next to the
		// server, and these payloads compress well at any level.
		s.zw, _ = gzip.NewWriterLevel(nil, gzip.BestSpeed)
	}
	return s
}

func (s *sender) run(ctx context.Context, work *plan, stop context.CancelCauseFunc) {
	for ctx.Err() == nil {
		b, first, n, ok := work.claim()
		if !ok {
			return
		}
		s.send(ctx, b, first, n, stop)
	}
}

// send sends batch b and records its outcome, unless the run was cut
// short while it was in flight.
func (s *sender) send(ctx context.Context, b, first uint64, n int, stop context.CancelCauseFunc) {
	body, path := s.gen.build(s.buf[:0], b, first, n, time.Now())
	s.buf = body
	if s.zw != nil {
		s.zbuf.Reset()
		s.zw.Reset(&s.zbuf)
		s.zw.Write(body) // writes to a bytes.Buffer do not fail
		s.zw.Close()
		body = s.zbuf.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.server+path, nil)
	if err != nil {
		// The URL was checked before the run started.
		stop(fmt.Errorf("make request: %w", err))
		return
	}
	req.Body = s.hold(body)
	req.GetBody = func() (io.ReadCloser, error) { return s.hold(body), nil }
	req.ContentLength = int64(len(body))
	req.SetBasicAuth(s.writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "custos-bench")
	if s.zw != nil {
		req.Header.Set("Content-Encoding", "gzip")
	}

	start := time.Now()
	status, snippet, err := s.do(req)
	latency := time.Since(start)
	s.held.Wait()

	switch {
	case err != nil && ctx.Err() != nil:
		// Cut short by the end of the run: neither success nor failure.
	case err != nil:
		if s.st.failure(0, n, len(body), err.Error()) {
			stop(s.earlyStop())
		}
	case status < 200 || status > 299:
		desc := fmt.Sprintf("POST %s: %d %s", path, status, http.StatusText(status))
		if snippet != "" {
			desc += ": " + snippet
		}
		if s.st.failure(status, n, len(body), desc) {
			stop(s.earlyStop())
		}
	default:
		s.st.success(status, n, len(body), latency)
	}
}

func (s *sender) earlyStop() error {
	return fmt.Errorf("stopped: the first %d requests all failed; the first: %s", earlyStopAfter, s.st.firstError())
}

// do sends req and reads the response body, all of it so that the
// connection is reused, and returns the start of it for a failure.
func (s *sender) do(req *http.Request) (status int, snippet string, err error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return 0, "", fmt.Errorf("read response: %w", err)
		}
		return resp.StatusCode, "", nil
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, snippetLen+1))
	if err != nil {
		return 0, "", fmt.Errorf("read %s response: %w", resp.Status, err)
	}
	// Drain a sensible amount to keep the connection; past that, closing
	// it is cheaper.
	io.CopyN(io.Discard, resp.Body, 64<<10)
	return resp.StatusCode, clip(head), nil
}

// snippetLen is how much of an error response is kept to show.
const snippetLen = 200

// clip makes a response body fit on one line of an error message.
func clip(b []byte) string {
	s := strings.Join(strings.FieldsFunc(string(b), unicode.IsSpace), " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(b) > snippetLen {
		s = strings.ToValidUTF8(s[:min(len(s), snippetLen)], "") + "..."
	}
	return s
}

// hold returns a body reading p that the sender waits for the transport to
// close before it reuses p.
func (s *sender) hold(p []byte) io.ReadCloser {
	s.held.Add(1)
	b := &heldBody{done: s.held.Done}
	b.Reset(p)
	return b
}

type heldBody struct {
	bytes.Reader
	once sync.Once
	done func()
}

func (b *heldBody) Close() error {
	b.once.Do(b.done)
	return nil
}
