package server

import (
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// auditPage answers one page of an audit chain, in sequence order.
func auditPage(r *http.Request, store custos.AuditStore, t custos.TenantID) (map[string]any, error) {
	p, err := readPage(r, "audit")
	if err != nil {
		return nil, err
	}
	var after uint64
	if p.Position != "" {
		if after, err = strconv.ParseUint(p.Position, 10, 64); err != nil {
			return nil, custos.Errorf(custos.Invalid, "cursor is not a next_cursor this list (audit) issued")
		}
	}
	// One more than the page tells whether another follows.
	entries, err := store.AuditEntries(r.Context(), t, after, p.Limit+1)
	if err != nil {
		return nil, err
	}
	next := ""
	if len(entries) > p.Limit {
		entries = entries[:p.Limit]
		next = p.cursor(strconv.FormatUint(entries[len(entries)-1].Seq, 10))
	}
	out := make([]auditEntryView, len(entries))
	for i, e := range entries {
		out[i] = auditEntryView(e)
	}
	return listPage("entries", out, next), nil
}

// auditEntryView is an audit entry as the API shows it: the subject is
// its audit pseudonym, never an identifier.
type auditEntryView struct {
	Seq       uint64          `json:"seq"`
	Time      time.Time       `json:"time"`
	Actor     string          `json:"actor"`
	Action    string          `json:"action"`
	Subject   string          `json:"subject,omitempty"`
	RequestID string          `json:"request_id,omitempty"`
	Details   json.RawMessage `json:"details,omitempty"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
}

func handleTenantAudit(log *slog.Logger, store custos.AuditStore) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		page, err := auditPage(r, store, t.ID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, page)
	}
}

// operatorChain reads ?tenant=ID; without it, the operator's own chain.
func operatorChain(r *http.Request) (custos.TenantID, error) {
	v := r.URL.Query().Get("tenant")
	if v == "" {
		return custos.OperatorChain, nil
	}
	return custos.ParseTenantID(v)
}

func handleOperatorAudit(log *slog.Logger, store custos.AuditStore) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := operatorChain(r)
		if err != nil {
			writeError(w, log, err)
			return
		}
		page, err := auditPage(r, store, t)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, page)
	})
}

func handleOperatorCheckpoint(log *slog.Logger, l *audit.Log, key ed25519.PrivateKey) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := operatorChain(r)
		if err != nil {
			writeError(w, log, err)
			return
		}
		c, err := l.Checkpoint(r.Context(), t, key)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, c)
	})
}

func handleTenantCheckpoint(log *slog.Logger, l *audit.Log, key ed25519.PrivateKey) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		c, err := l.Checkpoint(r.Context(), t.ID, key)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, c)
	}
}

// handleSigningKey publishes the node's Ed25519 public key, with which
// audit checkpoints (and erasure certificates) are verified offline.
func handleSigningKey(key ed25519.PrivateKey) http.Handler {
	pem := audit.PublicKeyPEM(key.Public().(ed25519.PublicKey))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(pem)
	})
}

// record writes an audit entry. Reads call it before answering, so no
// personal data leaves without its entry; a failure then refuses the read.
func record(r *http.Request, l *audit.Log, t custos.TenantID, e audit.Entry) error {
	if _, err := l.Record(r.Context(), t, e); err != nil {
		return &custos.Error{Code: custos.Unavailable, Message: "the audit log could not record this action; retry", Err: err}
	}
	return nil
}
