// Package admission decides what gets in before work reaches the ingest
// writer or the management API: token-bucket rate limits per tenant and
// per key, and a bound on the connections served at once. (The fair
// sharing of the writer between tenants is the writer's own, in
// internal/subjects.)
package admission

import (
	"math"
	"sync"
	"time"
)

// Rate is a token bucket's refill rate (tokens per second) and size. A
// zero PerSecond means no limit.
type Rate struct {
	PerSecond float64
	Burst     float64
}

// Limits are the rate limits of one scope: Tenant bounds all the keys of
// a tenant together, Key each credential on its own.
type Limits struct {
	Tenant, Key Rate
}

// Scope names what a limit applies to.
type Scope string

// The scopes: ingestion is counted in messages, the API in requests.
const (
	Ingest Scope = "ingest"
	API    Scope = "api"
	// Privacy counts device requests on /v1/privacy, which a public write
	// key can make: a bucket of their own, so a flood of them neither
	// stores requests without end nor eats the tenant's API budget.
	Privacy Scope = "privacy"
)

// DefaultLimits returns the limits when none are configured, sized
// against a node's documented throughput (about 20,000 events/s batched
// on 2 cores): one tenant may take half of a node's ingestion, with bursts
// of 50,000 messages; the API allows 100 requests/s per tenant, bursts of
// 500.
func DefaultLimits() map[Scope]Limits {
	return map[Scope]Limits{
		Ingest:  {Tenant: Rate{PerSecond: 10000, Burst: 50000}, Key: Rate{PerSecond: 10000, Burst: 50000}},
		API:     {Tenant: Rate{PerSecond: 100, Burst: 500}, Key: Rate{PerSecond: 100, Burst: 500}},
		Privacy: {Tenant: Rate{PerSecond: 100, Burst: 500}, Key: Rate{PerSecond: 100, Burst: 500}},
	}
}

// Limiter holds token buckets per scope, tenant and key. It is safe for
// concurrent use.
type Limiter struct {
	limits map[Scope]Limits
	now    func() time.Time

	mu      sync.Mutex
	buckets map[bucketKey]*bucket
}

type bucketKey struct {
	scope Scope
	kind  byte // 't' tenant, 'k' key
	id    string
}

type bucket struct {
	tokens float64
	at     time.Time
	rate   Rate // the rate it was last filled at
}

// maxBuckets bounds the memory of idle buckets: past it, full ones are
// dropped (a full bucket is the same as a fresh one).
const maxBuckets = 100000

// NewLimiter returns a Limiter with limits (a scope missing from it has no
// limit) on the clock now (nil: time.Now).
func NewLimiter(limits map[Scope]Limits, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{limits: limits, now: now, buckets: map[bucketKey]*bucket{}}
}

// Allow admits a request of cost tokens when the tenant's and the key's
// buckets of scope both hold at least one token, and then takes the whole
// cost from both, into debt if need be: a tenant in debt is refused until
// it has paid it back at its rate. So a request is judged before its
// body is read (Reserve), a large batch waits its turn rather than being
// refused for ever, and over time no tenant gets more than its rate. When
// refused, it returns false and how long until both buckets hold a token
// again.
func (l *Limiter) Allow(scope Scope, tenant, key string, cost float64) (bool, time.Duration) {
	lim, ok := l.limits[scope]
	if !ok {
		return true, 0
	}
	return l.AllowWith(scope, lim, tenant, key, cost)
}

// Limits returns the node's limits of scope (zero: none).
func (l *Limiter) Limits(scope Scope) Limits { return l.limits[scope] }

// AllowWith is Allow under lim instead of the node's limits of scope: a
// tenant's own limits, set by the operator.
func (l *Limiter) AllowWith(scope Scope, lim Limits, tenant, key string, cost float64) (bool, time.Duration) {
	return l.take(scope, lim, tenant, key, 0, cost)
}

// take gives back refund tokens to the tenant's and the key's buckets of
// scope, then admits a request of cost when both hold a token and takes
// cost from both.
func (l *Limiter) take(scope Scope, lim Limits, tenant, key string, refund, cost float64) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	tb := l.fill(bucketKey{scope, 't', tenant}, lim.Tenant, now)
	kb := l.fill(bucketKey{scope, 'k', key}, lim.Key, now)
	for _, b := range []*bucket{tb, kb} {
		if b != nil {
			b.tokens += refund
		}
	}
	if wait := max(short(tb, lim.Tenant), short(kb, lim.Key)); wait > 0 {
		return false, wait
	}
	if tb != nil {
		tb.tokens -= cost
	}
	if kb != nil {
		kb.tokens -= cost
	}
	return true, 0
}

// Reserve is Allow's test made before a request's body is read, while
// its cost is unknown: it admits the request when the tenant's and the
// key's buckets of scope both hold a token, and takes that token. Of
// requests arriving together on a bucket with one token left, only the
// first has its body read; the others are refused at once, before they
// cost any work. AllowReserved then judges the request, its cost known.
func (l *Limiter) Reserve(scope Scope, tenant, key string) (bool, time.Duration) {
	lim, ok := l.limits[scope]
	if !ok {
		return true, 0
	}
	return l.ReserveWith(scope, lim, tenant, key)
}

// ReserveWith is Reserve under lim instead of the node's limits.
func (l *Limiter) ReserveWith(scope Scope, lim Limits, tenant, key string) (bool, time.Duration) {
	return l.take(scope, lim, tenant, key, 0, 1)
}

// AllowReserved is AllowReservedWith under the node's limits of scope.
func (l *Limiter) AllowReserved(scope Scope, tenant, key string, cost float64) (bool, time.Duration) {
	lim, ok := l.limits[scope]
	if !ok {
		return true, 0
	}
	return l.AllowReservedWith(scope, lim, tenant, key, cost)
}

// AllowReservedWith is AllowWith for a request ReserveWith admitted: its
// reserved token is given back, and the request is judged and charged as
// AllowWith would, so that it is refused only where it would have been
// without the reservation (a burst of requests passed Reserve together
// and took the last tokens first).
func (l *Limiter) AllowReservedWith(scope Scope, lim Limits, tenant, key string, cost float64) (bool, time.Duration) {
	return l.take(scope, lim, tenant, key, 1, cost)
}

// short returns how long until b holds a whole token at r (0: it does, or
// b is nil, no limit).
func short(b *bucket, r Rate) time.Duration {
	if b == nil || b.tokens >= 1 {
		return 0
	}
	return need(1-b.tokens, r.PerSecond)
}

// fill returns the bucket of k refilled to now, nil when r has no limit.
func (l *Limiter) fill(k bucketKey, r Rate, now time.Time) *bucket {
	if r.PerSecond <= 0 {
		return nil
	}
	size := max(r.Burst, r.PerSecond, 1)
	b := l.buckets[k]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: size, at: now, rate: r}
		l.buckets[k] = b
		return b
	}
	b.rate = r
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = math.Min(size, b.tokens+el*r.PerSecond)
		b.at = now
	}
	return b
}

// prune drops the buckets that have refilled completely.
func (l *Limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		r := b.rate
		if b.tokens+now.Sub(b.at).Seconds()*r.PerSecond >= max(r.Burst, r.PerSecond, 1) {
			delete(l.buckets, k)
		}
	}
}

func need(tokens, perSecond float64) time.Duration {
	return time.Duration(math.Ceil(tokens / perSecond * float64(time.Second)))
}

// RetryAfter is the value of a Retry-After header for a wait: whole
// seconds, at least 1.
func RetryAfter(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}
