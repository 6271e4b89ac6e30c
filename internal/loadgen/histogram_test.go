package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	if got := bucketOf(math.MaxUint64); got >= numBuckets {
		t.Fatalf("bucketOf(MaxUint64) = %d, want < %d", got, numBuckets)
	}
	prev := 0
	r := rand.New(rand.NewPCG(1, 2))
	values := []uint64{0, 1, 255, 256, 257, 511, 512, 1 << 40, math.MaxUint64}
	for range 100_000 {
		values = append(values, r.Uint64()>>r.IntN(64))
	}
	slices.Sort(values)
	for _, v := range values {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucketOf(%d) = %d, below the bucket of a smaller value (%d)", v, i, prev)
		}
		prev = i
		mid := bucketMid(i)
		if v < 2*subBuckets && mid != v {
			t.Errorf("bucketMid(bucketOf(%d)) = %d, want exact below %d", v, mid, 2*subBuckets)
		}
		if rel := math.Abs(float64(mid)-float64(v)) / float64(max(v, 1)); rel > 0.004 {
			t.Errorf("bucketMid(bucketOf(%d)) = %d, %.2f%% off", v, mid, rel*100)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	if got := h.quantile(0.5); got != 0 {
		t.Errorf("empty histogram: p50 %s, want 0", got)
	}
	r := rand.New(rand.NewPCG(3, 4))
	samples := make([]time.Duration, 200_000)
	for i := range samples {
		// Log-normal around 3 ms with a long tail, like request latencies.
		samples[i] = time.Duration(3e6 * math.Exp(r.NormFloat64()))
		h.record(samples[i])
	}
	slices.Sort(samples)
	prev := time.Duration(0)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		got := h.quantile(q)
		want := samples[int(math.Ceil(q*float64(len(samples))))-1]
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
			t.Errorf("quantile(%v) = %s, exact %s: %.2f%% off, want within 1%%", q, got, want, rel*100)
		}
		if got < prev {
			t.Errorf("quantile(%v) = %s, below a lower quantile's %s", q, got, prev)
		}
		prev = got
	}
	if h.max != samples[len(samples)-1] {
		t.Errorf("max %s, want %s", h.max, samples[len(samples)-1])
	}
}
