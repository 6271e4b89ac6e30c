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
}
