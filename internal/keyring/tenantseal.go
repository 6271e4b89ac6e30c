package keyring

import (
	"github.com/custos-dev/custos"
)

// SealTenant seals a record that belongs to a tenant rather than to one
// subject — a pending delivery to a recipient, say, which must outlive the
// subject key it may name the person of — under a key derived from the
// tenant key. Deleting the tenant makes it unreadable like all its data.
func (r *Ring) SealTenant(t custos.TenantID, recordKey, plaintext []byte) ([]byte, error) {
	tk, err := r.tenant(t)
	if err != nil {
		return nil, err
	}
	return seal(tk.seal, nil, tenantAD(t, recordKey), plaintext), nil
}

// OpenTenant opens a record sealed by SealTenant for the same tenant and
// record key.
func (r *Ring) OpenTenant(t custos.TenantID, recordKey, sealed []byte) ([]byte, error) {
	tk, err := r.tenant(t)
	if err != nil {
		return nil, err
	}
	return open(tk.seal, nil, tenantAD(t, recordKey), sealed)
}

func tenantAD(t custos.TenantID, recordKey []byte) []byte {
	ad := make([]byte, 0, 2+len(t)+len(recordKey))
	ad = append(ad, formatVersion, 't')
	ad = append(ad, t[:]...)
	return append(ad, recordKey...)
}
