package keyring

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadMasterKey(t *testing.T) {
	key := testMaster(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	std := base64.StdEncoding.EncodeToString(key)
	rawURL := base64.RawURLEncoding.EncodeToString(key)
	tests := []struct {
		name    string
		env     string
		file    string
		want    []byte
		wantErr string // substring; "" means success
	}{
		{"env std", std, "", key, ""},
		{"env raw url", rawURL, "", key, ""},
		{"env with newline", std + "\n", "", key, ""},
		{"env not base64", "not base64!!", "", nil, "CUSTOS_MASTER_KEY: not base64"},
		{"env short", base64.StdEncoding.EncodeToString(key[:16]), "", nil, "CUSTOS_MASTER_KEY: decodes to 16 bytes, want 32"},
		{"file base64", "", write("b64.key", []byte(std+"\n")), key, ""},
		{"file raw url", "", write("url.key", []byte(rawURL)), key, ""},
		{"file raw bytes", "", write("raw.key", key), key, ""},
		{"file short", "", write("short.key", []byte(base64.StdEncoding.EncodeToString(key[:20]))), nil, "short.key: decodes to 20 bytes"},
		{"file garbage", "", write("bad.key", []byte("%%%%")), nil, "bad.key: not base64"},
		{"file missing", "", filepath.Join(dir, "nope.key"), nil, "nope.key"},
		{"both", std, write("both.key", key), nil, "both CUSTOS_MASTER_KEY and a key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, generated, err := LoadMasterKey(envOf(map[string]string{MasterKeyEnv: tt.env}), tt.file, t.TempDir(), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) || generated {
				t.Errorf("got %x, generated %v; want %x, false", got, generated, tt.want)
			}
		})
	}
}

func TestLoadMasterKeyGenerates(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	noEnv := envOf(nil)

	key, generated, err := LoadMasterKey(noEnv, "", dataDir, log)
	if err != nil {
		t.Fatal(err)
	}
	if !generated || len(key) != keySize {
		t.Fatalf("generated = %v, key %d bytes; want true, 32", generated, len(key))
	}
	for _, want := range []string{"WARNING", "backups of the data directory", "defeats crypto-shredding"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q does not say %q", logs.String(), want)
		}
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	for p, want := range map[string]os.FileMode{path: 0o600, dataDir: 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", p, got, want)
		}
	}

	logs.Reset()
	again, generated, err := LoadMasterKey(noEnv, "", dataDir, log)
	if err != nil {
		t.Fatal(err)
	}
	if generated || !bytes.Equal(again, key) {
		t.Errorf("second load: generated = %v, same key = %v; want false, true", generated, bytes.Equal(again, key))
	}
	if !strings.Contains(logs.String(), "keep it out of backups") {
		t.Errorf("loading the key from the data directory did not warn: %q", logs.String())
	}

	// The environment wins over the data directory's file: no generation.
	other := testMaster(t)
	got, _, err := LoadMasterKey(envOf(map[string]string{MasterKeyEnv: base64.StdEncoding.EncodeToString(other)}), "", dataDir, nil)
	if err != nil || !bytes.Equal(got, other) {
		t.Errorf("env with a data dir key present = %x, %v; want %x", got, err, other)
	}
}

func TestLoadMasterKeyNowhere(t *testing.T) {
	_, _, err := LoadMasterKey(envOf(nil), "", "", nil)
	if err == nil || !strings.Contains(err.Error(), MasterKeyEnv) {
		t.Errorf("no source: err = %v, want one naming %s", err, MasterKeyEnv)
	}
}
