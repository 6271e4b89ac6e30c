package server

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/subjects"
)

// handleFindProfile looks a subject up by one identifier given as a query
// parameter (?user_id=, ?anonymous_id=, ?email=, ?device_id=, or
// ?email_sha256= for the hex SHA-256 of a trimmed, lowercased address).
func handleFindProfile(log *slog.Logger, rd *subjects.Reader, al *audit.Log) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		q := r.URL.Query()
		var id custos.Identifier
		for _, typ := range append(custos.IdentifierTypes[:], custos.EmailSHA256) {
			if v := q.Get(typ.String()); v != "" {
				if id.Type != 0 {
					writeError(w, log, custos.Errorf(custos.Invalid, "give exactly one of user_id, anonymous_id, email, device_id, email_sha256"))
					return
				}
				id = custos.Identifier{Type: typ, Value: v}
			}
		}
		if id.Type == 0 {
			writeError(w, log, custos.Errorf(custos.Invalid, "give one of user_id, anonymous_id, email, device_id, email_sha256"))
			return
		}
		s, err := rd.Find(r.Context(), t.ID, id)
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeProfile(w, r, log, rd, al, t, s)
	}
}

func handleGetProfile(log *slog.Logger, rd *subjects.Reader, al *audit.Log) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		s, err := custos.ParseSubjectID(r.PathValue("subject_id"))
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeProfile(w, r, log, rd, al, t, s)
	}
}

func writeProfile(w http.ResponseWriter, r *http.Request, log *slog.Logger, rd *subjects.Reader, al *audit.Log, t *custos.Tenant, s custos.SubjectID) {
	p, err := rd.Profile(r.Context(), t.ID, s)
	if err == nil {
		err = recordRead(r, rd, al, t.ID, s, "profile.read", nil)
	}
	if err != nil {
		writeError(w, log, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// recordRead audits a read of a subject's data through the API, under
// the subject's pseudonym.
func recordRead(r *http.Request, rd *subjects.Reader, al *audit.Log, t custos.TenantID, s custos.SubjectID, action string, details any) error {
	pseudonym, err := rd.Pseudonym(t, s)
	if err != nil {
		return err
	}
	return record(r, al, t, audit.Entry{Actor: "tenant:secret-key", Action: action, Subject: pseudonym, Details: details})
}

func handleListEvents(log *slog.Logger, rd *subjects.Reader, al *audit.Log) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		s, err := custos.ParseSubjectID(r.PathValue("subject_id"))
		if err != nil {
			writeError(w, log, err)
			return
		}
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				writeError(w, log, custos.Errorf(custos.Invalid, "limit must be a whole number from 1 to 1000"))
				return
			}
			limit = n
		}
		events, next, err := rd.Events(r.Context(), t.ID, s, r.URL.Query().Get("cursor"), limit)
		if err == nil {
			err = recordRead(r, rd, al, t.ID, s, "events.read", map[string]int{"events": len(events)})
		}
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"events": events, "next_cursor": next})
	}
}
