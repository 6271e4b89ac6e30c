package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/subjects"
)

// consentRecordView is one record of a subject's consent ledger.
type consentRecordView struct {
	Subject       custos.SubjectID     `json:"subject_id"`
	Purpose       string               `json:"purpose"`
	Channel       string               `json:"channel"`
	Granted       bool                 `json:"granted"`
	Time          time.Time            `json:"time"`
	Source        custos.ConsentSource `json:"source"`
	NoticeVersion string               `json:"notice_version,omitempty"`
	IP            string               `json:"ip,omitempty"`
	UserAgent     string               `json:"user_agent,omitempty"`
	Proof         json.RawMessage      `json:"proof,omitempty"`
}

func viewConsentRecord(r custos.ConsentRecord) consentRecordView {
	return consentRecordView{Subject: r.Subject, Purpose: r.Purpose, Channel: r.Channel, Granted: r.Granted, Time: r.Time,
		Source: r.Source, NoticeVersion: r.NoticeVersion, IP: r.IP, UserAgent: r.UserAgent, Proof: r.Proof}
}

// handleRecordConsent records a grant or withdrawal for the subject an
// identity belongs to (created if never seen).
func handleRecordConsent(log *slog.Logger, rec *consent.Recorder) tenantHandler {
	type body struct {
		Identity      identityInput        `json:"identity"`
		Purpose       string               `json:"purpose"`
		Channel       string               `json:"channel"`
		Granted       *bool                `json:"granted"`
		Source        custos.ConsentSource `json:"source"`
		NoticeVersion string               `json:"notice_version"`
		Proof         json.RawMessage      `json:"proof"`
		IP            string               `json:"ip"`
		UserAgent     string               `json:"user_agent"`
		Time          time.Time            `json:"time"`
	}
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		in, err := decodeBody[body](w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		id, err := in.Identity.parse(true)
		if err != nil {
			writeError(w, log, err)
			return
		}
		stored, err := rec.Record(r.Context(), t, consent.Input{Identity: id, Purpose: in.Purpose, Channel: in.Channel, Granted: in.Granted,
			Source: in.Source, NoticeVersion: in.NoticeVersion, Proof: in.Proof, IP: in.IP, UserAgent: in.UserAgent, Time: in.Time})
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusCreated, viewConsentRecord(stored))
	}
}

// consentStateView is the current answer for one purpose and channel.
type consentStateView struct {
	Purpose string `json:"purpose"`
	Channel string `json:"channel"`
	// Status is granted, withdrawn or none (no record: no consent).
	Status string `json:"status"`
	// DecidedBy is the record that decided it: for this channel or, when
	// later, for every channel (channel "").
	DecidedBy *consentRecordView `json:"decided_by"`
}

// consentsView is a subject's current consent per declared purpose and
// channel, and its whole history.
type consentsView struct {
	Subject custos.SubjectID    `json:"subject_id"`
	State   []consentStateView  `json:"state"`
	History []consentRecordView `json:"history"`
}

// consentView renders a subject's current consent per declared purpose ×
// channel, and its whole history.
func consentView(st *custos.Settings, s custos.SubjectID, history []custos.ConsentRecord) consentsView {
	cur := consent.NewState(history)
	var state []consentStateView
	for _, p := range st.EffectivePurposes() {
		for _, ch := range custos.Channels {
			v := consentStateView{Purpose: p.Name, Channel: ch, Status: "none"}
			if d, ok := cur.Decision(p.Name, ch); ok {
				dv := viewConsentRecord(d)
				v.DecidedBy = &dv
				v.Status = "withdrawn"
				if d.Granted {
					v.Status = "granted"
				}
			}
			state = append(state, v)
		}
	}
	out := consentsView{Subject: s, State: state, History: make([]consentRecordView, len(history))}
	for i, h := range history {
		out.History[i] = viewConsentRecord(h)
	}
	return out
}

func handleGetConsents(log *slog.Logger, led *consent.Ledger, rd *subjects.Reader, al *audit.Log) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		s, err := custos.ParseSubjectID(r.PathValue("subject_id"))
		if err != nil {
			writeError(w, log, err)
			return
		}
		history, err := led.History(r.Context(), t.ID, s)
		if err == nil {
			err = recordRead(r, rd, al, t.ID, s, "consents.read", map[string]int{"records": len(history)})
		}
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, consentView(&t.Settings, s, history))
	}
}
