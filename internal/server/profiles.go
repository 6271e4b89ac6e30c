package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

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
	writeJSON(w, http.StatusOK, viewProfile(p))
}

// profileView is a subject's profile as the API shows it.
type profileView struct {
	Subject     custos.SubjectID           `json:"subject_id"`
	Identifiers map[string][]string        `json:"identifiers"`
	Traits      map[string]json.RawMessage `json:"traits"`
	Groups      []groupView                `json:"groups"`
	FirstSeen   time.Time                  `json:"first_seen"`
	LastSeen    time.Time                  `json:"last_seen"`
}

// groupView is a group the subject belongs to, with the group's traits.
type groupView struct {
	GroupID   string          `json:"group_id"`
	Traits    json.RawMessage `json:"traits,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}

func viewProfile(p *custos.Profile) profileView {
	v := profileView{Subject: p.Subject, Identifiers: p.Identifiers, Traits: p.Traits, Groups: make([]groupView, len(p.Groups)),
		FirstSeen: p.FirstSeen, LastSeen: p.LastSeen}
	for i, g := range p.Groups {
		v.Groups[i] = groupView(g)
	}
	return v
}

// eventView is a stored event as the API shows it.
type eventView struct {
	MessageID   string             `json:"message_id"`
	Type        custos.MessageType `json:"type"`
	Event       string             `json:"event,omitempty"`
	Name        string             `json:"name,omitempty"`
	UserID      string             `json:"user_id,omitempty"`
	AnonymousID string             `json:"anonymous_id,omitempty"`
	PreviousID  string             `json:"previous_id,omitempty"`
	GroupID     string             `json:"group_id,omitempty"`
	Properties  json.RawMessage    `json:"properties,omitempty"`
	Traits      json.RawMessage    `json:"traits,omitempty"`
	Context     json.RawMessage    `json:"context,omitempty"`
	Timestamp   time.Time          `json:"timestamp"`
	ReceivedAt  time.Time          `json:"received_at"`
}

// recordRead audits a read of a subject's data through the API, under
// the subject's pseudonym.
func recordRead(r *http.Request, rd *subjects.Reader, al *audit.Log, t custos.TenantID, s custos.SubjectID, action string, details any) error {
	pseudonym, err := rd.Pseudonym(t, s)
	if err != nil {
		return err
	}
	return record(r, al, t, audit.Entry{Actor: audit.ActorTenant, Action: action, Subject: pseudonym, Details: details})
}

func handleListEvents(log *slog.Logger, rd *subjects.Reader, al *audit.Log) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		s, err := custos.ParseSubjectID(r.PathValue("subject_id"))
		if err != nil {
			writeError(w, log, err)
			return
		}
		p, err := readPage(r, "events")
		if err != nil {
			writeError(w, log, err)
			return
		}
		events, next, err := rd.Events(r.Context(), t.ID, s, p.Position, p.Limit)
		if err == nil {
			err = recordRead(r, rd, al, t.ID, s, "events.read", map[string]int{"events": len(events)})
		}
		if err != nil {
			writeError(w, log, err)
			return
		}
		if next != "" {
			next = p.cursor(next)
		}
		out := make([]eventView, len(events))
		for i, e := range events {
			out[i] = eventView(e)
		}
		writeJSON(w, http.StatusOK, listPage("events", out, next))
	}
}
