package pebble

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Checkpoint writes a consistent copy of the store into dir, which must
// not exist yet, while reads and writes go on: every write acknowledged
// before the call is in it (the WAL is flushed first). The copy is a store
// Open can open; sstables are hard-linked when dir is on the same file
// system, copied otherwise.
func (s *Store) Checkpoint(dir string) error {
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("checkpoint store into %s: %w", dir, err)
	}
	return nil
}

// LockDir takes the lock a store in dir holds while open, so an offline
// tool can make sure no process uses the store; Close releases it. It
// fails while a process has the store open.
func LockDir(dir string) (io.Closer, error) {
	l, err := vfs.Default.Lock(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("store %s is in use (stop the server first): %w", dir, err)
	}
	return l, nil
}
