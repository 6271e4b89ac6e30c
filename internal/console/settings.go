package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/processing"
	"github.com/custos-dev/custos/internal/rights"
	"github.com/custos-dev/custos/internal/tenants"
)

// RecipientAdder adds a recipient of a tenant (the rights engine).
type RecipientAdder interface {
	AddRecipient(ctx context.Context, t *custos.Tenant, in rights.RecipientInput) (*custos.Recipient, error)
}

type settingsData struct {
	JSON       string
	Patch      string
	Branding   custos.PrivacyCenter
	Recipients []*custos.Recipient
	Keys       *tenants.Keys
	Error      string
	Flash      string
	RcpName    string
	RcpURL     string
}

// settingsJSON is the tenant's settings as JSON without the sealed SMTP
// password.
func settingsJSON(s custos.Settings) string {
	if s.SMTP != nil {
		m := *s.SMTP
		m.PasswordSealed, m.Password = nil, ""
		s.SMTP = &m
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	return string(b)
}

// settingsPage shows the settings (as JSON, changed by a merge patch),
// the privacy center's branding, the recipients and key rotation.
func (h *Handler) settingsPage(w http.ResponseWriter, r *http.Request, u *user) {
	flash := ""
	switch r.URL.Query().Get("done") {
	case "settings":
		flash = "Settings saved."
	case "recipient":
		flash = "Recipient added."
	case "recipient-deleted":
		flash = "Recipient removed."
	}
	h.showSettings(w, r, u, http.StatusOK, settingsData{Flash: flash})
}

func (h *Handler) showSettings(w http.ResponseWriter, r *http.Request, u *user, status int, d settingsData) {
	t, ok := h.d.Tenants.Get(u.t.ID) // as it is after a change
	if !ok {
		h.fail(w, u, custos.Errorf(custos.NotFound, "no tenant %s", u.t.ID))
		return
	}
	d.JSON = settingsJSON(t.Settings)
	if d.Patch == "" {
		d.Patch = "{\n  \n}"
	}
	if pc := t.Settings.PrivacyCenter; pc != nil {
		d.Branding = *pc
	}
	if h.d.Recipients != nil {
		var err error
		if d.Recipients, err = h.d.Recipients.Recipients(r.Context(), t.ID); err != nil {
			h.fail(w, u, err)
			return
		}
	}
	h.render(w, status, "settings", u.page("Settings", d))
}

// patchSettings applies a JSON merge patch, audited under the user.
func (h *Handler) patchSettings(w http.ResponseWriter, r *http.Request, u *user) {
	patch := strings.TrimSpace(r.PostFormValue("patch"))
	if r.PostFormValue("form") == "branding" {
		pc := map[string]string{}
		for _, k := range []string{"name", "logo_url", "primary_color", "background_color", "policy_url"} {
			if v := strings.TrimSpace(r.PostFormValue(k)); v != "" {
				pc[k] = v
			}
		}
		b, _ := json.Marshal(map[string]any{"privacy_center": pc})
		patch = string(b)
	}
	if _, err := h.d.Changes.As(u.actor()).UpdateSettings(r.Context(), u.t.ID, []byte(patch)); err != nil {
		if statusOf(err) >= 500 {
			h.fail(w, u, err)
			return
		}
		h.showSettings(w, r, u, statusOf(err), settingsData{Error: custos.ErrorMessage(err), Patch: patch})
		return
	}
	http.Redirect(w, r, "/console/settings?done=settings", http.StatusSeeOther)
}

func (h *Handler) addRecipient(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.RecipientAdder == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "recipients are not available on this node"))
		return
	}
	in := rights.RecipientInput{Name: strings.TrimSpace(r.PostFormValue("name")), URL: strings.TrimSpace(r.PostFormValue("url")),
		Secret: r.PostFormValue("secret"), Kind: r.PostFormValue("kind"), Actor: u.actor()}
	if _, err := h.d.RecipientAdder.AddRecipient(r.Context(), u.t, in); err != nil {
		if statusOf(err) >= 500 {
			h.fail(w, u, err)
			return
		}
		h.showSettings(w, r, u, statusOf(err), settingsData{Error: custos.ErrorMessage(err), RcpName: in.Name, RcpURL: in.URL})
		return
	}
	http.Redirect(w, r, "/console/settings?done=recipient", http.StatusSeeOther)
}

func (h *Handler) deleteRecipient(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.Recipients == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "recipients are not available on this node"))
		return
	}
	id := r.PathValue("id")
	if err := h.d.Recipients.DeleteRecipient(r.Context(), u.t.ID, id); err != nil {
		h.fail(w, u, err)
		return
	}
	if err := h.record(r.Context(), u.t.ID, audit.Entry{Actor: u.actor(), Action: "recipient.deleted", Details: map[string]string{"recipient": id}}); err != nil {
		h.fail(w, u, err)
		return
	}
	http.Redirect(w, r, "/console/settings?done=recipient-deleted", http.StatusSeeOther)
}

// rotateKeys replaces the tenant's API keys and shows the new ones once.
// Console sessions stay: they are not keyed by the secret key.
func (h *Handler) rotateKeys(w http.ResponseWriter, r *http.Request, u *user) {
	if r.PostFormValue("confirm") != "rotate" {
		h.showSettings(w, r, u, http.StatusBadRequest, settingsData{Error: "Type rotate to confirm: the current keys stop working at once."})
		return
	}
	_, keys, err := h.d.Changes.As(u.actor()).Rotate(r.Context(), u.t.ID)
	if err != nil {
		h.fail(w, u, err)
		return
	}
	h.showSettings(w, r, u, http.StatusOK, settingsData{Keys: &keys, Flash: "Keys rotated: copy the new ones now, they are not shown again."})
}

// processingRecord shows the tenant's record of processing (Art. 30(2))
// as the processing package renders it. Its one style block is allowed
// by its hash, so the CSP still allows nothing else inline.
func (h *Handler) processingRecord(w http.ResponseWriter, r *http.Request, u *user) {
	if h.d.ProcessingRecord == nil {
		h.fail(w, u, custos.Errorf(custos.NotImplemented, "this node builds no record of processing"))
		return
	}
	rec, err := h.d.ProcessingRecord(r.Context(), u.t)
	if err != nil {
		h.fail(w, u, err)
		return
	}
	var buf bytes.Buffer
	if err := rec.WriteHTML(&buf); err != nil {
		h.fail(w, u, err)
		return
	}
	if err := h.record(r.Context(), u.t.ID, audit.Entry{Actor: u.actor(), Action: "processing_record.read"}); err != nil {
		h.fail(w, u, err)
		return
	}
	page := buf.Bytes()
	csp := "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	if i, j := bytes.Index(page, []byte("<style>")), bytes.Index(page, []byte("</style>")); i >= 0 && j > i {
		sum := sha256.Sum256(page[i+len("<style>") : j])
		csp += "; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(page)
}

// ProcessingRecordFunc builds a tenant's record of processing.
type ProcessingRecordFunc func(ctx context.Context, t *custos.Tenant) (*processing.Record, error)
