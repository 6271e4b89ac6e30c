package keyring

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/custos-dev/custos"
)

// MasterKeyEnv is the environment variable LoadMasterKey reads first.
const MasterKeyEnv = "CUSTOS_MASTER_KEY"

// MasterKeyFile is the name of the generated master key file in the data
// directory.
const MasterKeyFile = "master.key"

// ErrWrongMasterKey is returned when a master key does not open the key
// store it is given.
var ErrWrongMasterKey = &custos.Error{Code: custos.Internal, Message: "master key does not match the key store"}

// Meta records in the key store.
const (
	// metaMasterCheck holds a value sealed with the master key, so a
	// wrong master key is refused at once instead of producing garbage.
	metaMasterCheck = "master-check"
	// metaDeletedTenants lists (16 bytes each) the tenants whose keys were
	// destroyed, so they answer ErrShredded and are never created again.
	metaDeletedTenants = "deleted-tenants"
)

// Associated data under the master key, one domain per kind of value.
var (
	adMasterCheck = []byte{formatVersion, 'm', 'c'}
	checkText     = []byte("custos master key check")
)

func adTenantKey(t custos.TenantID) []byte {
	return append([]byte{formatVersion, 't'}, t[:]...)
}

// sealMasterCheck returns a fresh master-check record for master.
func sealMasterCheck(master cipher.AEAD) []byte {
	return seal(master, nil, adMasterCheck, checkText)
}

// checkMaster reports whether master opens the store's master-check
// record; found is false when the store has none yet.
func checkMaster(ctx context.Context, ks custos.KeyStore, master cipher.AEAD) (ok, found bool, err error) {
	rec, err := ks.Meta(ctx, metaMasterCheck)
	if custos.ErrorCode(err) == custos.NotFound {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("read master check: %w", err)
	}
	pt, err := open(master, nil, adMasterCheck, rec)
	return err == nil && bytes.Equal(pt, checkText), true, nil
}

// LoadMasterKey finds the 32-byte master key: in the environment variable
// CUSTOS_MASTER_KEY (base64, standard or raw URL alphabet), else in keyFile
// (base64 text, or 32 raw bytes), else in <dataDir>/master.key, which it
// generates (mode 0600, directory 0700) if missing; generated reports that.
//
// A key kept in the data directory is a convenience for a first start: a
// backup of the data directory then holds the key too, and defeats
// crypto-shredding. LoadMasterKey logs a warning whenever it uses one.
func LoadMasterKey(getenv func(string) string, keyFile, dataDir string, log *slog.Logger) (key []byte, generated bool, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	env := getenv(MasterKeyEnv)
	switch {
	case env != "" && keyFile != "":
		return nil, false, fmt.Errorf("master key: both %s and a key file (%s) are given; use one", MasterKeyEnv, keyFile)
	case env != "":
		key, err := decodeMasterKey([]byte(env))
		if err != nil {
			return nil, false, fmt.Errorf("master key from %s: %w", MasterKeyEnv, err)
		}
		return key, false, nil
	case keyFile != "":
		key, err := readMasterKey(keyFile)
		return key, false, err
	case dataDir == "":
		return nil, false, fmt.Errorf("master key: none given: set %s, give a key file, or a data directory to keep one in", MasterKeyEnv)
	}

	path := filepath.Join(dataDir, MasterKeyFile)
	key, err = readMasterKey(path)
	if err == nil {
		log.Warn("the master key is kept in the data directory; move it out (to "+MasterKeyEnv+" or a key file) "+
			"and keep it out of backups of the data directory: a backup holding the key defeats crypto-shredding",
			"path", path)
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, err = generateMasterKey(dataDir, path)
	if errors.Is(err, fs.ErrExist) {
		// Another process generated it first.
		key, err := readMasterKey(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, err
	}
	log.Warn("WARNING: generated a new master key in the data directory. Keep this file apart from backups of "+
		"the data directory: a backup that holds the master key defeats crypto-shredding (erased data could be "+
		"read back from it). Move it to "+MasterKeyEnv+" or a key file kept elsewhere, and keep a safe copy: "+
		"without it no data can be read.",
		"path", path)
	return key, true, nil
}

// readMasterKey reads a key file: 32 raw bytes or base64 text.
func readMasterKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if len(b) == keySize {
		return b, nil
	}
	key, err := decodeMasterKey(b)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return key, nil
}

// decodeMasterKey decodes base64 text (standard or raw URL alphabet,
// surrounding space ignored) into a 32-byte key.
func decodeMasterKey(text []byte) ([]byte, error) {
	text = bytes.TrimSpace(text)
	var key []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		key = make([]byte, enc.DecodedLen(len(text)))
		var n int
		if n, err = enc.Decode(key, text); err == nil {
			key = key[:n]
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("not base64 (standard or raw URL alphabet): %d bytes of text", len(text))
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("decodes to %d bytes, want %d (generate one with: head -c 32 /dev/urandom | base64)", len(key), keySize)
	}
	return key, nil
}

// generateMasterKey writes a new random key to path, refusing to replace
// an existing file.
func generateMasterKey(dir, path string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}
	key := make([]byte, keySize)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("generate master key %s: %w", path, err)
	}
	return key, nil
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadMasterKeyFile reads a master key file: 32 raw bytes or base64 text.
func ReadMasterKeyFile(path string) ([]byte, error) { return readMasterKey(path) }

// NewMasterKeyText returns a fresh random master key as base64 text, the
// form CUSTOS_MASTER_KEY and key files take.
func NewMasterKeyText() string { return base64.StdEncoding.EncodeToString(newKey()) }
