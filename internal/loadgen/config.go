package loadgen

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/custos-dev/custos/internal/urlpolicy"
)

// Config describes one load run. Zero values of Batch, Concurrency and
// Users take the defaults documented on each field.
type Config struct {
	// Server is the base URL of the server under test, such as
	// http://127.0.0.1:8080; the /v1/... paths are appended to it.
	Server string
	// WriteKey is sent as the user name of HTTP Basic auth, with an empty
	// password, as the Segment libraries do.
	WriteKey string
	// Events is the number of events to send. Zero, with Duration set,
	// means no limit on the count.
	Events int
	// Duration stops the run once it has elapsed: no new request starts
	// after it, requests in flight complete. Zero means no time limit, so
	// Events must be set.
	Duration time.Duration
	// Batch is the number of events per request (default 100). Batch 1
	// sends each message alone to its own endpoint (/v1/track,
	// /v1/identify); more sends POST /v1/batch.
	Batch int
	// Concurrency is the number of senders, each with one request in
	// flight at a time (default 4).
	Concurrency int
	// Users is the number of distinct users the events are spread over
	// (default 1000): user i has user ID "user-<i>" and a stable
	// anonymous ID. Events go to users in turn, so a run of at least Users
	// events reaches every one of them.
	Users int
	// Gzip compresses each request body and sends Content-Encoding: gzip.
	Gzip bool
	// Seed makes the payloads reproducible: the same seed gives the same
	// message IDs, properties and sizes (timestamps aside). Zero picks a
	// random seed, reported in Result.Seed. A server that deduplicates on
	// messageId treats a rerun with the same seed as duplicates. The users
	// (ids, anonymous ids, traits) are the same whatever the seed, so a
	// run with another seed sends new events of the same people.
	Seed int64
	// Client sends the requests. Nil means a client made for the run:
	// keep-alive, one idle connection per sender, no proxy, HTTP/1.1, a
	// 60-second timeout per request.
	Client *http.Client
}

// Defaults applied to zero fields of Config.
const (
	defaultBatch       = 100
	defaultConcurrency = 4
	defaultUsers       = 1000
)

// resolve returns cfg with defaults applied, or an error naming the first
// field that is wrong.
func (cfg Config) resolve() (Config, error) {
	if cfg.Server == "" {
		return cfg, errors.New("server URL is required")
	}
	if _, err := (urlpolicy.Policy{}).Check("server URL", cfg.Server); err != nil {
		return cfg, fmt.Errorf("%w: want http://host[:port] or https://host[:port]", err)
	}
	cfg.Server = strings.TrimRight(cfg.Server, "/")
	if cfg.WriteKey == "" {
		return cfg, errors.New("write key is required")
	}
	switch {
	case cfg.Events < 0:
		return cfg, fmt.Errorf("events %d: must not be negative", cfg.Events)
	case cfg.Duration < 0:
		return cfg, fmt.Errorf("duration %s: must not be negative", cfg.Duration)
	case cfg.Events == 0 && cfg.Duration == 0:
		return cfg, errors.New("set a number of events, a duration, or both")
	case cfg.Batch < 0:
		return cfg, fmt.Errorf("batch %d: must not be negative", cfg.Batch)
	case cfg.Concurrency < 0:
		return cfg, fmt.Errorf("concurrency %d: must not be negative", cfg.Concurrency)
	case cfg.Users < 0:
		return cfg, fmt.Errorf("users %d: must not be negative", cfg.Users)
	}
	if cfg.Batch == 0 {
		cfg.Batch = defaultBatch
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = defaultConcurrency
	}
	if cfg.Users == 0 {
		cfg.Users = defaultUsers
	}
	return cfg, nil
}
