package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// histogram counts durations in log-linear buckets, as HDR histograms do:
// exact below 256 ns, and above that 128 buckets per power of two, so a
// bucket is at most 1/128 of its value wide and the middle of a bucket is
// within 0.4% of any value in it. Its size is fixed whatever it counts.
type histogram struct {
	counts [numBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	subBits    = 7
	subBuckets = 1 << subBits
	// Enough buckets for every uint64: the largest index is
	// (64-subBits-1)*subBuckets + 2*subBuckets - 1.
	numBuckets = (64 - subBits + 1) * subBuckets
)

func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [128, 256)
	return shift*subBuckets + int(v>>shift)
}

// bucketMid returns the middle of bucket i's range of values.
func bucketMid(i int) uint64 {
	if i < 2*subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	lo := uint64(i-shift*subBuckets) << shift
	return lo + (uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

// quantile returns the duration below or at which a share q of the
// recorded durations fall, 0 when nothing was recorded. It never exceeds
// the largest duration recorded, so quantiles are monotone up to max.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketMid(i)), h.max)
		}
	}
	return h.max
}
