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
// telling progress what it does.
type BackupFunc func(ctx context.Context, dir string, progress func(string)) error

// handleBackup takes a backup into a directory on the server's machine
// and streams its progress as JSON lines: {"progress": "..."}, then
// {"done": true} or {"error": "..."}.
func handleBackup(log *slog.Logger, backup BackupFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			To string `json:"to"`
		}
		if err := decodeJSON(r, &in); err != nil {
			writeError(w, log, err)
			return
		}
		if in.To == "" || !filepath.IsAbs(in.To) {
			writeError(w, log, custos.Errorf(custos.Invalid, "to must be an absolute directory path on the server's machine"))
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		flush := func() {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		err := backup(r.Context(), filepath.Clean(in.To), func(s string) {
			enc.Encode(map[string]string{"progress": s})
			flush()
		})
		if err != nil {
			log.Error("backup failed", "err", err)
			enc.Encode(map[string]string{"error": err.Error()})
			return
		}
		log.Info("backup taken", "dir", in.To)
		enc.Encode(map[string]bool{"done": true})
	})
}
