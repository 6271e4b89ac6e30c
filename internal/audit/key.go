package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/custos-dev/custos"
)

// SigningKeyFile is the name of the node's signing key in its data
// directory.
const SigningKeyFile = "node-signing.key"

// LoadSigningKey returns the node's Ed25519 signing key from
// <dir>/node-signing.key, generating it on first start. The file holds
// either a PEM "PRIVATE KEY" block (PKCS #8, as openssl genpkey -algorithm
// ed25519 writes) or the standard base64 of the 64-byte private key. A
// generated key is written as PEM with mode 0600, atomically: concurrent
// first starts agree on one key.
func LoadSigningKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, SigningKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createSigningKey(dir, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	return parseSigningKey(path, b)
}

func parseSigningKey(path string, b []byte) (ed25519.PrivateKey, error) {
	b = bytes.TrimSpace(b)
	if bytes.HasPrefix(b, []byte("-----BEGIN")) {
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("signing key %s: want a PEM PRIVATE KEY block", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", path, err)
		}
		key, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("signing key %s: a %T, want an Ed25519 key", path, k)
		}
		return key, nil
	}
	raw, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: neither PEM nor base64", path)
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("signing key %s: %d bytes, want %d", path, len(raw), ed25519.PrivateKeySize)
	}
	// The second half is the public key: it must be the seed's, or every
	// signature would fail to verify.
	key := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	if !bytes.Equal(key, raw) {
		return nil, fmt.Errorf("signing key %s: the public half does not belong to the private half", path)
	}
	return key, nil
}

// createSigningKey writes a new key to a temporary file and links it into
// place, so that no one ever reads a half-written key and a racing first
// start that lost uses the winner's key.
func createSigningKey(dir, path string) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create signing key directory: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+SigningKeyFile+".*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	if err := os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read signing key: %w", err)
		}
		return parseSigningKey(path, b)
	} else if err != nil {
		return nil, fmt.Errorf("install signing key: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("install signing key: %w", err)
	}
	return key, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// PublicKeyPEM encodes pub as a PEM "PUBLIC KEY" block (PKIX), the form
// served at /.well-known/custos/signing-key and read by ParsePublicKeyPEM
// and openssl.
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		// Unreachable: every ed25519.PublicKey marshals.
		panic(fmt.Sprintf("audit: marshal public key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicKeyPEM decodes the PEM "PUBLIC KEY" block PublicKeyPEM writes
// and returns the Ed25519 key in it.
func ParsePublicKeyPEM(b []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, custos.Errorf(custos.Invalid, "want a PEM PUBLIC KEY block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, &custos.Error{Code: custos.Invalid, Message: "the PEM block holds no valid public key", Err: err}
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, custos.Errorf(custos.Invalid, "the public key is not an Ed25519 key")
	}
	return pub, nil
}
