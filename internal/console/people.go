package console

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/consent"
)

// eventsPerPage is how many events a person's page shows at a time.
const eventsPerPage = 20

type consentNow struct {
	Purpose, Channel, Status string
	Record                   *custos.ConsentRecord
}

type peopleData struct {
	IDType, Value string
	IDTypes       []string
	Searched      bool
	Found         bool
	Profile       *custos.Profile
	Traits        map[string]string
	Events        []custos.Event
	Cursor        string
	Next          string
	Flags         *custos.SubjectFlags
	Consent       []consentNow
	History       []custos.ConsentRecord
	Types         []custos.RequestType
}

// peoplePage looks a person up by any identifier and shows what is held:
// profile, identifiers, events (paged), flags, consent state and history.
// Each look-up that finds someone is audited as a read of their data.
func (h *Handler) peoplePage(w http.ResponseWriter, r *http.Request, u *user) {
	q := r.URL.Query()
	d := peopleData{IDType: q.Get("type"), Value: strings.TrimSpace(q.Get("value")), Cursor: q.Get("cursor"),
		IDTypes: []string{"user_id", "email", "anonymous_id", "device_id"},
		Types:   []custos.RequestType{custos.Access, custos.Portability, custos.Erasure, custos.Suppress, custos.Restrict, custos.Object}}
	if d.IDType == "" {
		d.IDType = "user_id"
	}
	title := "People"
	if d.Value == "" {
		h.render(w, http.StatusOK, "people", u.page(title, d))
		return
	}
	d.Searched = true
	typ, err := custos.ParseIdentifierType(d.IDType)
	if err != nil {
		p := u.page(title, d)
		p.Error = custos.ErrorMessage(err)
		h.render(w, http.StatusBadRequest, "people", p)
		return
	}
	ctx := r.Context()
	s, err := h.d.Subjects.Find(ctx, u.t.ID, custos.Identifier{Type: typ, Value: d.Value})
	if custos.ErrorCode(err) == custos.NotFound {
		h.render(w, http.StatusOK, "people", u.page(title, d))
		return
	}
	if err == nil {
		d.Profile, err = h.d.Subjects.Profile(ctx, u.t.ID, s)
	}
	if err == nil {
		d.Events, d.Next, err = h.d.Subjects.Events(ctx, u.t.ID, s, d.Cursor, eventsPerPage)
	}
	var history []custos.ConsentRecord
	if err == nil {
		history, err = h.d.Consents.History(ctx, u.t.ID, s)
	}
	if err == nil && h.d.Flags != nil {
		var f custos.SubjectFlags
		if f, err = h.d.Flags.Flags(ctx, u.t.ID, s); err == nil {
			d.Flags = &f
		}
	}
	var pseudonym string
	if err == nil {
		pseudonym, err = h.d.Subjects.Pseudonym(u.t.ID, s)
	}
	if err == nil {
		err = h.record(ctx, u.t.ID, audit.Entry{Actor: u.actor(), Action: "profile.read", Subject: pseudonym,
			Details: map[string]any{"via": "console", "events": len(d.Events)}})
	}
	if err != nil {
		h.fail(w, u, err)
		return
	}
	d.Found = true
	d.Traits = map[string]string{}
	for k, v := range d.Profile.Traits {
		d.Traits[k] = string(v)
	}
	st := consent.NewState(history)
	for _, p := range u.t.Settings.EffectivePurposes() {
		for _, ch := range custos.Channels {
			c := consentNow{Purpose: p.Name, Channel: ch, Status: "none"}
			if rec, ok := st.Decision(p.Name, ch); ok {
				c.Record = &rec
				c.Status = "withdrawn"
				if rec.Granted {
					c.Status = "granted"
				}
			}
			d.Consent = append(d.Consent, c)
		}
	}
	d.History = slices.Clone(history)
	slices.Reverse(d.History) // newest first
	h.render(w, http.StatusOK, "people", u.page(title+": "+d.Value, d))
}

type auditData struct {
	Entries  []custos.AuditEntry
	After    uint64
	Next     uint64
	Verified bool
	Checked  uint64
	Head     string
	Break    string
	Error    string
}

// auditPerPage is how many audit entries a page shows.
const auditPerPage = 50

// auditPage pages through the tenant's audit chain and, on request,
// verifies the whole chain.
func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.AuditStore == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node serves no audit log page"))
		return
	}
	q := r.URL.Query()
	var d auditData
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			h.fail(w, u, custos.Errorf(custos.Invalid, "after must be a sequence number"))
			return
		}
		d.After = n
	}
	ctx := r.Context()
	entries, err := h.d.AuditStore.AuditEntries(ctx, u.t.ID, d.After, auditPerPage)
	if err != nil {
		h.fail(w, u, err)
		return
	}
	d.Entries = entries
	if len(entries) == auditPerPage {
		d.Next = entries[len(entries)-1].Seq
	}
	if q.Get("verify") == "1" {
		checked, head, brk, err := audit.VerifyStore(ctx, h.d.AuditStore, u.t.ID)
		if err != nil {
			h.fail(w, u, err)
			return
		}
		d.Verified, d.Checked, d.Head = brk == nil, checked, head
		if brk != nil {
			d.Break = brk.Reason
		}
	}
	h.render(w, http.StatusOK, "audit", u.page("Audit log", d))
}
