package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"slices"

	"github.com/custos-dev/custos"
)

// Identifier hashes are HMAC-SHA-256 under the tenant's identifier-hash
// key of
//
//	type (1 byte, 1..255) || normalised value
//
// and other pseudonyms (HashValue, HashMessageID) of
//
//	0x00 || len(domain) (1 byte) || domain || value
//
// The leading zero byte, never an identifier type, keeps the two apart;
// the length-prefixed domain keeps domains apart.

// domainMessageID is the HashValue domain of message ids.
const domainMessageID = "message-id"

// hasher is a reusable HMAC with scratch space, so that hashing allocates
// nothing. crypto/hmac keeps the keyed inner and outer states after the
// first use, so Reset costs two state copies, not two block hashes.
type hasher struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

func newHasher(key []byte) *hasher {
	return &hasher{h: hmac.New(sha256.New, key), buf: make([]byte, 0, 128)}
}

// maxPooledBuf bounds the scratch a pooled hasher keeps, so one huge value
// does not pin memory for good.
const maxPooledBuf = 4 << 10

// hash returns the HMAC of the bytes in hs.buf.
func (tk *tenant) hash(hs *hasher) [sha256.Size]byte {
	hs.h.Reset()
	hs.h.Write(hs.buf)
	var out [sha256.Size]byte
	copy(out[:], hs.h.Sum(hs.sum[:0]))
	if cap(hs.buf) > maxPooledBuf {
		hs.buf = make([]byte, 0, 128)
	}
	tk.hashers.Put(hs)
	return out
}

// HashIdentifier returns the keyed hash of an identifier, the only form in
// which identifiers are used as index keys. It normalises id first (e-mail
// addresses are trimmed and lowercased), so callers need not. The hash
// differs between tenants and between identifier types of the same value.
func (r *Ring) HashIdentifier(t custos.TenantID, id custos.Identifier) (custos.IdentifierHash, error) {
	if !slices.Contains(custos.IdentifierTypes[:], id.Type) && id.Type != custos.EmailSHA256 {
		return custos.IdentifierHash{}, custos.Errorf(custos.Invalid, "unknown identifier type %d", id.Type)
	}
	tk, err := r.tenant(t)
	if err != nil {
		return custos.IdentifierHash{}, err
	}
	id = id.Normalize()
	if id.Value == "" {
		return custos.IdentifierHash{}, custos.Errorf(custos.Invalid, "empty %s", id.Type)
	}
	hs := tk.hashers.Get().(*hasher)
	hs.buf = append(append(hs.buf[:0], byte(id.Type)), id.Value...)
	return tk.hash(hs), nil
}

// HashMessageID returns the keyed hash of a message id, used to drop
// retried messages without keeping their ids. It is the first 16 bytes of
// HashValue in the domain "message-id".
func (r *Ring) HashMessageID(t custos.TenantID, messageID string) (custos.MessageHash, error) {
	sum, err := hashValue(r, t, domainMessageID, messageID)
	var h custos.MessageHash
	copy(h[:], sum[:])
	return h, err
}

// HashValue returns a keyed hash (HMAC-SHA-256 under t's identifier-hash
// key) of v in the given domain: a pseudonym for other uses, such as
// audit entries, that survives erasure without revealing v. Hashes of
// one value in different domains are unrelated. The domain must be 1 to
// 255 bytes; "message-id" is the domain of HashMessageID. Under
// custos.OperatorChain the key derives from the master key instead, for
// values that concern no tenant (a client's address): every node with the
// master key computes the same hash, and rotating the master key changes
// them all.
func (r *Ring) HashValue(t custos.TenantID, domain string, v []byte) ([32]byte, error) {
	return hashValue(r, t, domain, v)
}

func hashValue[V string | []byte](r *Ring, t custos.TenantID, domain string, v V) ([32]byte, error) {
	if len(domain) == 0 || len(domain) > 255 {
		return [32]byte{}, custos.Errorf(custos.Invalid, "hash domain must be 1 to 255 bytes, not %d", len(domain))
	}
	tk := r.operator
	if t != custos.OperatorChain {
		var err error
		if tk, err = r.tenant(t); err != nil {
			return [32]byte{}, err
		}
	}
	hs := tk.hashers.Get().(*hasher)
	hs.buf = append(hs.buf[:0], 0, byte(len(domain)))
	hs.buf = append(hs.buf, domain...)
	hs.buf = append(hs.buf, v...)
	return tk.hash(hs), nil
}
