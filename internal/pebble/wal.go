package pebble

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// noReuseFS is the operating system's file system, except that Pebble
// may not recycle an old write-ahead log by renaming it: the old file is
// removed and a new one created. A recycled log keeps its old bytes past
// the point the new log has reached, and those bytes would outlive a
// purge of the records they hold.
type noReuseFS struct{ vfs.FS }

// ReuseForWrite removes oldname and creates newname.
func (f noReuseFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if err := f.Remove(oldname); err != nil && !isNotExist(err) {
		return nil, err
	}
	return f.Create(newname, category)
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// recycledLogs is how many obsolete logs Pebble keeps for reuse at most
// (its MemTableStopWritesThreshold plus one, with our settings).
func recycledLogs(o *pebble.Options) int { return o.MemTableStopWritesThreshold + 1 }

// cycleLogs makes every write-ahead log that exists when it starts
// obsolete, and gets each one Pebble keeps for reuse reused — which
// noReuseFS turns into a deletion — so that after it no file holds bytes
// written before it. Each turn writes marker into a fresh memtable and
// flushes it, which starts a new log; the cleaner then retires the old
// one. It stops as soon as none of the starting logs is left (usually
// after two or three turns), and after depth+2 turns at most.
func cycleLogs(db *pebble.DB, fs vfs.FS, dir string, depth int, marker []byte) error {
	before, err := logFiles(fs, dir)
	if err != nil {
		return err
	}
	for range depth + 2 {
		if err := db.Set(marker, nil, pebble.NoSync); err != nil {
			return fmt.Errorf("rotate log: %w", err)
		}
		if err := db.Flush(); err != nil {
			return fmt.Errorf("rotate log: %w", err)
		}
		db.TestOnlyWaitForCleaning()
		now, err := logFiles(fs, dir)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(before, func(name string) bool { return slices.Contains(now, name) }) {
			break
		}
	}
	if err := db.Delete(marker, pebble.Sync); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	return nil
}

// logFiles lists the write-ahead log files in dir.
func logFiles(fs vfs.FS, dir string) ([]string, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("list logs: %w", err)
	}
	var logs []string
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			logs = append(logs, n)
		}
	}
	return logs, nil
}
