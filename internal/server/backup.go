package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/custos-dev/custos"
)

// BackupFunc writes an online backup of the node's data store into dir,
// telling progress what it does. A node whose store it cannot back up
// (PostgreSQL, which has its own tools) answers an error before any
// progress.
type BackupFunc func(ctx context.Context, dir string, progress func(string)) error

// backupLine is one line of the answer to POST /admin/v1/backup.
type backupLine struct {
	Progress string `json:"progress,omitempty"`
	Done     bool   `json:"done,omitempty"`
	Error    string `json:"error,omitempty"`
}

// handleBackup takes a backup into a directory on the server's machine
// and streams its progress as JSON lines: {"progress": "..."}, then
// {"done": true} or {"error": "..."}. An error before the first progress
// line (a directory that is not empty, a store that cannot be backed up
// this way) is an ordinary error answer.
func handleBackup(log *slog.Logger, backup BackupFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := decodeBody[struct {
			To string `json:"to"`
		}](w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		if in.To == "" || !filepath.IsAbs(in.To) {
			writeError(w, log, custos.Errorf(custos.Invalid, "to must be an absolute directory path on the server's machine"))
			return
		}
		enc := json.NewEncoder(w)
		started := false
		send := func(l backupLine) {
			if !started {
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.WriteHeader(http.StatusOK)
				started = true
			}
			enc.Encode(l)
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		err = backup(r.Context(), filepath.Clean(in.To), func(s string) { send(backupLine{Progress: s}) })
		switch {
		case err != nil && !started:
			writeError(w, log, err)
		case err != nil:
			log.Error("backup failed", "err", err)
			send(backupLine{Error: err.Error()})
		default:
			log.Info("backup taken", "dir", in.To)
			send(backupLine{Done: true})
		}
	})
}
