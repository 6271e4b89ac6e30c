package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Result is what a run measured. Latencies are of acknowledged (2xx)
// requests, from just before a request is sent until its response body has
// been read.
type Result struct {
	// Events is the number of events acknowledged with a 2xx status.
	Events int
	// Requests is the number of requests that completed, well or badly.
	// Requests cut short by the end of a run are not counted.
	Requests int
	// Errors is the number of requests that failed: a status other than
	// 2xx, or a transport error.
	Errors int
	// Bytes is the total size of the request bodies sent, after gzip.
	Bytes int64
	// Elapsed is the wall time from the first request to the last response.
	Elapsed time.Duration
	// EventsPerSec is Events divided by Elapsed.
	EventsPerSec float64
	// P50, P90 and P99 are percentiles of the acknowledgement latency,
	// accurate to about half a percent; Max is exact.
	P50, P90, P99, Max time.Duration
	// StatusCounts counts completed requests by HTTP status; transport
	// errors, which have none, count under 0.
	StatusCounts map[int]int
	// FirstError describes the first failed request (its status and the
	// start of the response body, or the transport error); empty when none
	// failed.
	FirstError string
	// Seed is the seed the payloads were made from, so that a run with a
	// random seed can be repeated.
	Seed int64
}

// Format writes a human-readable summary of r to w: throughput, latency
// percentiles, errors and status counts.
func (r Result) Format(w io.Writer) {
	fmt.Fprintf(w, "events     %d acknowledged in %s: %.0f events/s\n", r.Events, r.Elapsed.Round(time.Millisecond), r.EventsPerSec)
	fmt.Fprintf(w, "requests   %d sent (%s), %d failed\n", r.Requests, formatBytes(r.Bytes), r.Errors)
	fmt.Fprintf(w, "latency    p50 %s  p90 %s  p99 %s  max %s\n",
		formatLatency(r.P50), formatLatency(r.P90), formatLatency(r.P99), formatLatency(r.Max))
	if len(r.StatusCounts) > 0 {
		codes := slices.Sorted(maps.Keys(r.StatusCounts))
		parts := make([]string, 0, len(codes))
		for _, c := range codes {
			name := fmt.Sprint(c)
			if c == 0 {
				name = "transport error"
			}
			parts = append(parts, fmt.Sprintf("%s: %d", name, r.StatusCounts[c]))
		}
		fmt.Fprintf(w, "status     %s\n", strings.Join(parts, ", "))
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error %s\n", r.FirstError)
	}
	fmt.Fprintf(w, "seed       %d\n", r.Seed)
}

// formatLatency prints d with three significant digits: 850µs, 3.12ms,
// 41.0ms, 1.25s.
func formatLatency(d time.Duration) string {
	units := []struct {
		name string
		size time.Duration
	}{{"s", time.Second}, {"ms", time.Millisecond}, {"µs", time.Microsecond}}
	for _, u := range units {
		if d >= u.size {
			v := float64(d) / float64(u.size)
			switch {
			case v >= 100:
				return fmt.Sprintf("%.0f%s", v, u.name)
			case v >= 10:
				return fmt.Sprintf("%.1f%s", v, u.name)
			default:
				return fmt.Sprintf("%.2f%s", v, u.name)
			}
		}
	}
	return fmt.Sprintf("%dns", d)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
