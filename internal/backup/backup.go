// Package backup takes online backups of a node's data store and restores
// them. A backup holds the data store only, never the key store: the key
// store (per-subject keys, and the tombstones of shredded ones) stays
// where it is, so a subject erased after a backup was taken stays
// unreadable when that backup is restored — its key is gone for good.
package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/custos-dev/custos"
)

// Checkpointer writes a consistent copy of a store into a new directory
// while the store stays in use (pebble.Store satisfies it).
type Checkpointer interface {
	Checkpoint(dir string) error
}

// Manifest describes a backup; it is written last, so a directory
// without one is an incomplete backup.
type Manifest struct {
	Format    int       `json:"format"`
	CreatedAt time.Time `json:"created_at"`
	// Region is the region of the node the backup was taken on.
	Region string `json:"region,omitempty"`
	Files  int    `json:"files"`
	Bytes  int64  `json:"bytes"`
}

// ManifestFile is the manifest's name in a backup directory; StoreDir is
// the data store's.
const (
	ManifestFile = "custos-backup.json"
	StoreDir     = "store"
	format       = 1
)

// Take writes a backup of st into dir, which must not exist or be empty,
// telling progress what it does. It does not stop writes: the backup holds
// everything acknowledged before it began, and possibly some later writes.
func Take(ctx context.Context, st Checkpointer, dir, region string, now func() time.Time, progress func(string)) (Manifest, error) {
	if progress == nil {
		progress = func(string) {}
	}
	if err := emptyOrAbsent(dir); err != nil {
		return Manifest{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Manifest{}, fmt.Errorf("create backup directory: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Manifest{}, err
	}
	start := now()
	progress("checkpointing the data store (writes go on)")
	if err := st.Checkpoint(filepath.Join(dir, StoreDir)); err != nil {
		return Manifest{}, err
	}
	files, bytes, err := size(filepath.Join(dir, StoreDir))
	if err != nil {
		return Manifest{}, err
	}
	progress(fmt.Sprintf("data store checkpointed: %d files, %d bytes in %s", files, bytes, now().Sub(start).Round(time.Millisecond)))
	m := Manifest{Format: format, CreatedAt: start.UTC(), Region: region, Files: files, Bytes: bytes}
	if err := writeManifest(dir, m); err != nil {
		return Manifest{}, err
	}
	progress("manifest written: backup complete (the key store is not in it; back it up apart, see docs/security.md)")
	return m, nil
}

// RestoreOptions says where a backup goes.
type RestoreOptions struct {
	// From is the backup directory, DataDir the node's data directory;
	// Store is the node's data store directory, which the backup replaces
	// (default <DataDir>/store). KeysDir, if set, is the node's current key
	// store directory, which must exist and is left alone (a key store in
	// PostgreSQL is not checked here: the server refuses to start without
	// it).
	From, DataDir, Store, KeysDir string
	// Force replaces a store that is not empty.
	Force bool
	// Lock, if set, locks a store directory against use by a running
	// server (pebble.LockDir); Restore refuses when it fails.
	Lock func(dir string) (io.Closer, error)
	// Progress is told what Restore does.
	Progress func(string)
}

// Restore brings the data store of a backup into a node's data directory.
// The server must be stopped. It refuses without the node's key store, and
// refuses to replace a store that holds anything unless Force is set.
func Restore(ctx context.Context, o RestoreOptions) (Manifest, error) {
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	m, err := ReadManifest(o.From)
	if err != nil {
		return Manifest{}, err
	}
	if o.KeysDir != "" {
		if fi, err := os.Stat(o.KeysDir); err != nil || !fi.IsDir() {
			return Manifest{}, fmt.Errorf("no key store at %s: a backup is restored with the node's current key store, which is not in the backup", o.KeysDir)
		}
	}
	target := o.Store
	if target == "" {
		target = filepath.Join(o.DataDir, StoreDir)
	}
	if o.Lock != nil {
		if _, err := os.Stat(target); err == nil {
			l, err := o.Lock(target)
			if err != nil {
				return Manifest{}, err
			}
			defer l.Close()
		}
	}
	if err := emptyOrAbsent(target); err != nil {
		if !o.Force {
			return Manifest{}, fmt.Errorf("%w; give --force to replace it with the backup", err)
		}
		progress("removing the current data store (--force)")
		if err := removeContents(target); err != nil {
			return Manifest{}, err
		}
	}
	progress(fmt.Sprintf("copying the backup of %s: %d files, %d bytes", m.CreatedAt.Format(time.RFC3339), m.Files, m.Bytes))
	if err := copyTree(ctx, filepath.Join(o.From, StoreDir), target, progress); err != nil {
		return Manifest{}, err
	}
	// The duplicate filter describes the store as it was, including
	// messages after the backup: kept, it would drop their resending.
	if err := os.Remove(filepath.Join(o.DataDir, "dedupe.filter")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, fmt.Errorf("remove the stale duplicate filter: %w", err)
	}
	progress("restore complete: start the server with the same key store and master key")
	return m, nil
}

// ReadManifest reads the manifest of the backup in dir.
func ReadManifest(dir string) (Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return Manifest{}, fmt.Errorf("%s is not a complete backup (no %s): %w", dir, ManifestFile, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("backup manifest %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if m.Format != format {
		return Manifest{}, fmt.Errorf("backup format %d, this version reads %d", m.Format, format)
	}
	return m, nil
}

func writeManifest(dir string, m Manifest) error {
	b, _ := json.MarshalIndent(m, "", "  ")
	tmp := filepath.Join(dir, ManifestFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write backup manifest: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write backup manifest: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync backup manifest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write backup manifest: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ManifestFile)); err != nil {
		return fmt.Errorf("write backup manifest: %w", err)
	}
	return syncDir(dir)
}

// emptyOrAbsent fails when dir holds anything.
func emptyOrAbsent(dir string) error {
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	if len(es) > 0 {
		return custos.Errorf(custos.Invalid, "%s is not empty", dir)
	}
	return nil
}

func removeContents(dir string) error {
	es, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range es {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove %s: %w", e.Name(), err)
		}
	}
	return nil
}

func size(dir string) (files int, bytes int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += fi.Size()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("measure %s: %w", dir, err)
	}
	return files, bytes, nil
}

// copyTree copies the regular files of src into dst (created), each
// synced, reporting every 10% of the files.
func copyTree(ctx context.Context, src, dst string, progress func(string)) error {
	es, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read backup store: %w", err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	step := max(len(es)/10, 1)
	for i, e := range es {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
		if (i+1)%step == 0 || i+1 == len(es) {
			progress(fmt.Sprintf("copied %d of %d files", i+1, len(es)))
		}
	}
	return syncDir(dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("sync %s: %w", dst, err)
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
