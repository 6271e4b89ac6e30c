package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/custos-dev/custos"
)

// Every sealed value, wrapped key or record, is
//
//	version (1 byte) || nonce (12 bytes) || AES-256-GCM ciphertext and tag
//
// and the version byte is also the first byte of the associated data, so a
// later format cannot be confused with this one.
const (
	formatVersion = 1
	keySize       = 32
	nonceSize     = 12
	tagSize       = 16
	headerSize    = 1 + nonceSize

	// Overhead is the number of bytes sealing adds to a plaintext.
	Overhead = headerSize + tagSize
)

// ErrTampered is returned when a sealed record or wrapped key fails
// authentication: it was changed, truncated, moved to another record or
// subject, or sealed under another key.
var ErrTampered = &custos.Error{Code: custos.Internal, Message: "record failed authentication"}

// newAEAD returns AES-256-GCM under key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(key), keySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// seal appends the sealed form of plaintext to dst. ad must start with
// formatVersion.
func seal(aead cipher.AEAD, dst, ad, plaintext []byte) []byte {
	ret, out := grow(dst, headerSize+len(plaintext)+tagSize)
	out[0] = formatVersion
	nonce := out[1:headerSize]
	rand.Read(nonce)
	aead.Seal(out[headerSize:headerSize], nonce, plaintext, ad)
	return ret
}

// open appends the plaintext of sealed to dst, or returns ErrTampered.
// ad must start with formatVersion.
func open(aead cipher.AEAD, dst, ad, sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead || sealed[0] != formatVersion {
		return nil, ErrTampered
	}
	out, err := aead.Open(dst, sealed[1:headerSize], sealed[headerSize:], ad)
	if err != nil {
		return nil, ErrTampered
	}
	return out, nil
}

// grow extends dst by n bytes, reallocating only if its capacity is short,
// and returns the whole slice and the new tail.
func grow(dst []byte, n int) (whole, tail []byte) {
	if total := len(dst) + n; cap(dst) >= total {
		whole = dst[:total]
	} else {
		whole = make([]byte, total)
		copy(whole, dst)
	}
	return whole, whole[len(dst):]
}

// newKey returns a fresh random key.
func newKey() []byte {
	k := make([]byte, keySize)
	rand.Read(k)
	return k
}

// plainAEAD is the InsecurePlaintext stand-in for AES-GCM: same sizes,
// no secrecy, and a zero tag that Open checks, for benchmarks only.
type plainAEAD struct{}

func newPlainAEAD([]byte) (cipher.AEAD, error) { return plainAEAD{}, nil }

func (plainAEAD) NonceSize() int { return nonceSize }
func (plainAEAD) Overhead() int  { return tagSize }
func (plainAEAD) Seal(dst, _, plaintext, _ []byte) []byte {
	dst = append(dst, plaintext...)
	return append(dst, make([]byte, tagSize)...)
}
func (plainAEAD) Open(dst, _, ciphertext, _ []byte) ([]byte, error) {
	if len(ciphertext) < tagSize {
		return nil, errors.New("short record")
	}
	return append(dst, ciphertext[:len(ciphertext)-tagSize]...), nil
}
