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
	// ConsoleUsers are the people the tenant lets into its console with
	// a name and a password (internal/tenants manages them).
	ConsoleUsers []ConsoleUser `json:"-"`
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
