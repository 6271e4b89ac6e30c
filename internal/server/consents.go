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

// consentAudit is what the audit keeps of a grant or withdrawal: never the
// IP, user agent or proof, which are personal data and go with an erasure.
type consentAudit struct {
	Purpose string               `json:"purpose"`
	Channel string               `json:"channel"`
	Granted bool                 `json:"granted"`
	Source  custos.ConsentSource `json:"source"`
}

// handleRecordConsent records a grant or withdrawal for the subject an
// identity belongs to (created if never seen).
func handleRecordConsent(log *slog.Logger, led *consent.Ledger, rd *subjects.Reader, al *audit.Log, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		var in struct {
			Identity struct {
				Type  string `json:"type"`
				Value string `json:"value"`
			} `json:"identity"`
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
		if err := decodeJSON(r, &in); err != nil {
			writeError(w, log, err)
			return
		}
		if in.Identity.Type == "" || in.Identity.Value == "" {
			writeError(w, log, custos.Errorf(custos.Invalid, "identity: type and value are required, e.g. {\"type\": \"user_id\", \"value\": \"u-42\"}"))
			return
		}
		typ, err := custos.ParseIdentifierType(in.Identity.Type)
		if err != nil {
			writeError(w, log, custos.Errorf(custos.Invalid, "identity.type: %s", custos.ErrorMessage(err)))
			return
		}
		if in.Granted == nil {
			writeError(w, log, custos.Errorf(custos.Invalid, "granted is required: true for a grant, false for a withdrawal"))
			return
		}
		if in.Source == "" {
			in.Source = custos.SourceAPI
		}
		if in.Source == custos.SourceSDK {
			writeError(w, log, custos.Errorf(custos.Invalid, "source \"sdk\" is for consent carried by ingested messages; use api, import or unsubscribe_link"))
			return
		}
		if in.IP != "" && consent.TruncateIP(in.IP) == "" {
			writeError(w, log, custos.Errorf(custos.Invalid, "ip %q is not an IP address", in.IP))
			return
		}
		at := now().UTC()
		if !in.Time.IsZero() {
			// Only an import speaks of the past; nothing is dated ahead.
			if in.Source != custos.SourceImport {
				writeError(w, log, custos.Errorf(custos.Invalid, "time may only be given with source \"import\"; other records are dated when received"))
				return
			}
			if in.Time.After(at) {
				writeError(w, log, custos.Errorf(custos.Invalid, "time %s is in the future", in.Time.Format(time.RFC3339)))
				return
			}
			at = in.Time.UTC()
		}
		if string(in.Proof) == "null" {
			in.Proof = nil
		}
		rec := custos.ConsentRecord{
			Purpose: in.Purpose, Channel: in.Channel, Granted: *in.Granted, Time: at, Source: in.Source,
			NoticeVersion: in.NoticeVersion, IP: consent.TruncateIP(in.IP), UserAgent: in.UserAgent, Proof: in.Proof,
		}
		if err := consent.Check(&t.Settings, &rec); err != nil {
			writeError(w, log, err)
			return
		}
		s, err := led.Record(r.Context(), t.ID, custos.Identifier{Type: typ, Value: in.Identity.Value}, rec)
		if err != nil {
			writeError(w, log, err)
			return
		}
		action := "consent.withdraw"
		if rec.Granted {
			action = "consent.grant"
		}
		pseudonym, err := rd.Pseudonym(t.ID, s)
		if err == nil {
			err = record(r, al, t.ID, audit.Entry{Actor: "tenant:secret-key", Action: action, Subject: pseudonym,
				Details: consentAudit{Purpose: rec.Purpose, Channel: rec.Channel, Granted: rec.Granted, Source: rec.Source}})
		}
		if err != nil {
			writeError(w, log, err)
			return
		}
		rec.Subject = s
		writeJSON(w, http.StatusCreated, rec)
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
	DecidedBy *custos.ConsentRecord `json:"decided_by"`
}

// consentView renders a subject's current consent per declared purpose ×
// channel, and its whole history.
func consentView(st *custos.Settings, s custos.SubjectID, history []custos.ConsentRecord) map[string]any {
	cur := consent.NewState(history)
	var state []consentStateView
	for _, p := range st.EffectivePurposes() {
		for _, ch := range custos.Channels {
			v := consentStateView{Purpose: p.Name, Channel: ch, Status: "none"}
			if d, ok := cur.Decision(p.Name, ch); ok {
				v.DecidedBy = &d
				v.Status = "withdrawn"
				if d.Granted {
					v.Status = "granted"
				}
			}
			state = append(state, v)
		}
	}
	return map[string]any{"subject_id": s, "state": state, "history": history}
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
