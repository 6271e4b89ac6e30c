package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RightsConfig configures a rights benchmark: subjects with many events
// are made, then erased and exported through the API.
type RightsConfig struct {
	Server    string
	WriteKey  string
	SecretKey string
	// EraseEvents is the events of each subject to erase (default 10,000);
	// Erasures how many such subjects (default 5).
	EraseEvents, Erasures int
	// ExportEvents is the events of each subject to export (default 1,000);
	// Exports how many exports to time (default 20).
	ExportEvents, Exports int
	// LargeExport is the events of one big subject exported once (default
	// 100,000; 0 skips it).
	LargeExport int
	Client      *http.Client
}

// RightsResult holds the measured times.
type RightsResult struct {
	Unreadable, Certified, Purged []time.Duration // per erasure, from receipt
	// PurgeDue is, per erasure whose certificate names a purge pass to
	// come (purge_due_at) instead of a purge done, when that pass is due.
	PurgeDue           []time.Duration
	Export             []time.Duration // per small export
	LargeExport        time.Duration
	LargeExportBytes   int64
	RSSBefore, RSSPeak float64 // server resident memory, bytes
}

// Rights runs the rights benchmark.
func Rights(ctx context.Context, cfg RightsConfig, progress io.Writer) (RightsResult, error) {
	if cfg.EraseEvents == 0 {
		cfg.EraseEvents = 10_000
	}
	if cfg.Erasures == 0 {
		cfg.Erasures = 5
	}
	if cfg.ExportEvents == 0 {
		cfg.ExportEvents = 1_000
	}
	if cfg.Exports == 0 {
		cfg.Exports = 20
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Minute}
	}
	c := rightsClient{cfg: cfg, base: strings.TrimRight(cfg.Server, "/"), run: strconv.FormatInt(time.Now().UnixNano(), 36)}
	var res RightsResult

	fmt.Fprintf(progress, "erasure: %d subjects of %d events\n", cfg.Erasures, cfg.EraseEvents)
	for i := range cfg.Erasures {
		user := fmt.Sprintf("bench-erase-%s-%d", c.run, i)
		if err := c.feed(ctx, user, cfg.EraseEvents); err != nil {
			return res, err
		}
		r, err := c.request(ctx, `{"type":"erasure","identity":{"type":"user_id","value":"`+user+`"}}`)
		if err != nil {
			return res, err
		}
		received := r.time("received_at")
		er, _ := r["erasure"].(map[string]any)
		at := func(k string) time.Duration {
			t, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(er[k]))
			return t.Sub(received)
		}
		res.Unreadable = append(res.Unreadable, at("shredded_at"))
		var purge string
		if _, due := er["purge_due_at"]; due {
			res.PurgeDue = append(res.PurgeDue, at("purge_due_at"))
			purge = "purge pass due after " + at("purge_due_at").Round(time.Millisecond).String()
		} else {
			res.Purged = append(res.Purged, at("purged_at"))
			purge = "purged after " + at("purged_at").Round(time.Millisecond).String()
		}
		res.Certified = append(res.Certified, r.time("completed_at").Sub(received))
		fmt.Fprintf(progress, "  erasure %d: unreadable after %v, %s, certified after %v\n", i+1,
			res.Unreadable[i].Round(time.Microsecond), purge, res.Certified[i].Round(time.Millisecond))
	}

	fmt.Fprintf(progress, "access export: %d exports of %d events\n", cfg.Exports, cfg.ExportEvents)
	user := "bench-export-" + c.run
	if err := c.feed(ctx, user, cfg.ExportEvents); err != nil {
		return res, err
	}
	for range cfg.Exports {
		d, _, err := c.export(ctx, user, nil)
		if err != nil {
			return res, err
		}
		res.Export = append(res.Export, d)
	}
	if cfg.LargeExport > 0 {
		big := "bench-export-large-" + c.run
		fmt.Fprintf(progress, "large export: feeding %d events\n", cfg.LargeExport)
		if err := c.feed(ctx, big, cfg.LargeExport); err != nil {
			return res, err
		}
		res.RSSBefore, _ = c.rss(ctx)
		peak := res.RSSBefore
		d, n, err := c.export(ctx, big, func() {
			if v, err := c.rss(ctx); err == nil && v > peak {
				peak = v
			}
		})
		if err != nil {
			return res, err
		}
		res.LargeExport, res.LargeExportBytes, res.RSSPeak = d, n, peak
	}
	return res, nil
}

// Format prints the result.
func (r RightsResult) Format(w io.Writer) {
	q := func(ds []time.Duration, p float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	fmt.Fprintf(w, "erasure unreadable (key shredded)  p50 %v  max %v\n", q(r.Unreadable, 0.5), q(r.Unreadable, 1))
	fmt.Fprintf(w, "erasure certificate issued         p50 %v  max %v\n", q(r.Certified, 0.5), q(r.Certified, 1))
	if len(r.Purged) > 0 {
		fmt.Fprintf(w, "erasure physically purged          p50 %v  max %v\n", q(r.Purged, 0.5), q(r.Purged, 1))
	}
	if len(r.PurgeDue) > 0 {
		fmt.Fprintf(w, "erasure purge pass due             p50 %v  max %v\n", q(r.PurgeDue, 0.5), q(r.PurgeDue, 1))
	}
	fmt.Fprintf(w, "access export                      p50 %v  p99 %v\n", q(r.Export, 0.5), q(r.Export, 0.99))
	if r.LargeExport > 0 {
		fmt.Fprintf(w, "large access export                %v, %d bytes; server RSS %.0f MB before, %.0f MB peak\n",
			r.LargeExport, r.LargeExportBytes, r.RSSBefore/(1<<20), r.RSSPeak/(1<<20))
	}
}

type rightsClient struct {
	cfg  RightsConfig
	base string
	run  string
}

type object map[string]any

func (o object) time(k string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(o[k]))
	return t
}

// feed sends n events of one user in 500-event batches.
func (c rightsClient) feed(ctx context.Context, user string, n int) error {
	base := time.Now().Add(-time.Hour)
	for sent := 0; sent < n; {
		var b bytes.Buffer
		b.WriteString(`{"batch":[`)
		k := min(500, n-sent)
		for i := range k {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"type":"track","messageId":"%s-%d","userId":"%s","event":"Viewed","properties":{"i":%d,"url":"https://shop.example.com/p/%d"},"timestamp":%q}`,
				user, sent+i, user, sent+i, sent+i, base.Add(time.Duration(sent+i)*time.Millisecond).UTC().Format(time.RFC3339Nano))
		}
		b.WriteString(`]}`)
		req, _ := http.NewRequestWithContext(ctx, "POST", c.base+"/v1/batch", &b)
		req.SetBasicAuth(c.cfg.WriteKey, "")
		if _, err := c.do(req, http.StatusOK); err != nil {
			return err
		}
		sent += k
	}
	return nil
}

func (c rightsClient) request(ctx context.Context, body string) (object, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", c.base+"/api/v1/requests", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.cfg.SecretKey)
	b, err := c.do(req, http.StatusCreated)
	if err != nil {
		return nil, err
	}
	var o object
	return o, json.Unmarshal(b, &o)
}

// export makes an access request and times the download of its result.
func (c rightsClient) export(ctx context.Context, user string, during func()) (time.Duration, int64, error) {
	r, err := c.request(ctx, `{"type":"access","identity":{"type":"user_id","value":"`+user+`"}}`)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/api/v1/requests/"+fmt.Sprint(r["id"])+"/result", nil)
	req.Header.Set("Authorization", "Bearer "+c.cfg.SecretKey)
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET result: %s", resp.Status)
	}
	var n int64
	buf := make([]byte, 256<<10)
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		if during != nil {
			during()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, n, err
		}
	}
	return time.Since(start), n, nil
}

// rss reads the server's resident memory from its metrics.
func (c rightsClient) rss(ctx context.Context) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/metrics", nil)
	b, err := c.do(req, http.StatusOK)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no process_resident_memory_bytes in /metrics")
}

func (c rightsClient) do(req *http.Request, want int) ([]byte, error) {
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, clip(b))
	}
	return b, nil
}
