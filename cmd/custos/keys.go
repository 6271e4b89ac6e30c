package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"

	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pebble"
)

func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: custos keys rotate-master|new-master-key")
	}
	switch args[0] {
	case "new-master-key":
		fmt.Fprintln(stdout, keyring.NewMasterKeyText())
		return nil
	case "rotate-master":
		return runRotateMaster(ctx, args[1:], getenv, stdout, stderr)
	}
	return fmt.Errorf("unknown keys command %q (want rotate-master or new-master-key)", args[0])
}

// runRotateMaster re-wraps every tenant key under a new master key. The
// server must be stopped: the key store allows one process at a time.
func runRotateMaster(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("custos keys rotate-master", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", env(getenv, "CUSTOS_DATA", "./custos-data"), "data directory (CUSTOS_DATA)")
	keysDir := fs.String("keys", env(getenv, "CUSTOS_KEYS", ""), "key store: directory or postgres:// URL (CUSTOS_KEYS; default <data>/keys)")
	storeLoc := fs.String("store", env(getenv, "CUSTOS_STORE", ""), "data store, where the rotation is audited: directory or postgres:// URL (CUSTOS_STORE; default <data>/store)")
	oldFile := fs.String("master-key-file", env(getenv, "CUSTOS_MASTER_KEY_FILE", ""), "file holding the current master key (or CUSTOS_MASTER_KEY; default <data>/master.key)")
	newFile := fs.String("new-key-file", "", "file holding the new master key (make one with: custos keys new-master-key)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *newFile == "" {
		return errors.New("--new-key-file is required (make one with: custos keys new-master-key > new.key)")
	}
	if *keysDir == "" {
		*keysDir = filepath.Join(*data, "keys")
	}
	inDataDir := *oldFile == "" && getenv(keyring.MasterKeyEnv) == ""
	if inDataDir {
		if _, err := os.Stat(filepath.Join(*data, keyring.MasterKeyFile)); err != nil {
			return fmt.Errorf("no current master key: set %s, give --master-key-file, or point --data at the data directory holding %s", keyring.MasterKeyEnv, keyring.MasterKeyFile)
		}
	}
	oldKey, _, err := keyring.LoadMasterKey(getenv, *oldFile, *data, nil)
	if err != nil {
		return err
	}
	newKey, err := keyring.ReadMasterKeyFile(*newFile)
	if err != nil {
		return err
	}
	sts, err := openStores(ctx, *storeLoc, *keysDir, *data, pebble.Options{}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return fmt.Errorf("%w (is the server still running? stop it first)", err)
	}
	defer sts.Close(slog.New(slog.DiscardHandler))
	if err := keyring.RotateMaster(ctx, sts.keys, oldKey, newKey); err != nil {
		return err
	}
	// A key operation is audited like every other, in the operator's chain.
	if _, err := audit.New(sts.data, time.Now).Record(ctx, custos.OperatorChain, audit.Entry{Actor: "operator:cli", Action: "keys.rotate_master"}); err != nil {
		fmt.Fprintf(stderr, "warning: the rotation is done but was not recorded in the audit log: %v\n", err)
	}
	fmt.Fprintf(stdout, "master key rotated: every tenant key in %s is now wrapped by the key in %s\n", sts.keysDesc, *newFile)
	if inDataDir {
		// Replace the key kept in the data directory atomically, so the
		// server starts with the new key as it did with the old one.
		path := filepath.Join(*data, keyring.MasterKeyFile)
		if err := replaceFile(path, []byte(base64.StdEncoding.EncodeToString(newKey)+"\n")); err != nil {
			return fmt.Errorf("rotation is done but %s still holds the old key: copy %s over it (%w)", path, *newFile, err)
		}
		fmt.Fprintf(stdout, "%s now holds the new key\n", path)
		return nil
	}
	fmt.Fprintf(stdout, "start the server with the new key: --master-key-file %s (or CUSTOS_MASTER_KEY); the old key no longer opens the key store\n", *newFile)
	return nil
}

// replaceFile writes data beside path and renames it over path, so a
// crash leaves the old or the new content, never a torn file.
func replaceFile(path string, data []byte) error {
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
