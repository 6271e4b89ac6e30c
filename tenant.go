package custos

import "time"

// Tenant is one controller using Custos: a silo with its own keys, its own
// encryption keys and its own key range.
type Tenant struct {
	ID        TenantID  `json:"id"`
	Name      string    `json:"name"`
	Region    string    `json:"region"`
	CreatedAt time.Time `json:"created_at"`
	// WriteKeyHash and SecretKeyHash are SHA-256 digests of the API keys;
	// the keys themselves are shown once and never stored.
	WriteKeyHash  [32]byte  `json:"-"`
	SecretKeyHash [32]byte  `json:"-"`
	KeysRotatedAt time.Time `json:"keys_rotated_at,omitzero"`
	// Settings are the tenant's processing choices.
	Settings Settings `json:"settings"`
	// RateLimits, set by the operator (never by the tenant), replace the
	// node's rate limits for this tenant; nil: the node's.
	RateLimits *RateLimits `json:"rate_limits,omitempty"`
	// ConsoleUsers are the people the tenant lets into its console with
	// a name and a password (internal/tenants manages them).
	ConsoleUsers []ConsoleUser `json:"-"`
}

// RateLimits are a tenant's own rate limits, each per tenant and per key
// as the node's are. A zero field keeps the node's value for it.
type RateLimits struct {
	// IngestPerSecond and IngestBurst bound ingestion, in messages.
	IngestPerSecond float64 `json:"ingest_per_second,omitempty"`
	IngestBurst     float64 `json:"ingest_burst,omitempty"`
	// APIPerSecond and APIBurst bound the management API (and device
	// requests on /v1/privacy, in their own buckets), in requests.
	APIPerSecond float64 `json:"api_per_second,omitempty"`
	APIBurst     float64 `json:"api_burst,omitempty"`
}

// MaxRate bounds every field of RateLimits: a typo of a few zeros should
// not switch a tenant's limits off.
const MaxRate = 1e7

// Validate refuses a negative or absurd rate, naming the field.
func (r *RateLimits) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"ingest_per_second", r.IngestPerSecond}, {"ingest_burst", r.IngestBurst}, {"api_per_second", r.APIPerSecond}, {"api_burst", r.APIBurst}} {
		if f.v < 0 || f.v > MaxRate || f.v != f.v {
			return Errorf(Invalid, "%s must be from 0 (the node's) to %g", f.name, float64(MaxRate))
		}
	}
	return nil
}

// ConsoleUser is a person a tenant lets into its console. Only a hash of
// the password is kept, and the second factor's secret only sealed with
// the tenant's key.
type ConsoleUser struct {
	Name string `json:"name"`
	// PasswordHash is the bcrypt hash of the password.
	PasswordHash []byte `json:"password_hash"`
	// Admin users manage users, settings, recipients and keys.
	Admin bool `json:"admin"`
	// TOTPSealed is the TOTP secret sealed with the tenant key; empty
	// when the user has no second factor.
	TOTPSealed []byte    `json:"totp_sealed,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}
