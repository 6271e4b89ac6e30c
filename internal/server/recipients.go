package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/rights"
)

// recipientView is a recipient as the API shows it: never its secret.
// Blocked is set for a recipient outside the tenant's region once
// transfers are forbidden: nothing is sent to it, for the reason given.
type recipientView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	URL       string    `json:"url"`
	Region    string    `json:"region"`
	Domain    string    `json:"domain,omitempty"`
	Pinned    bool      `json:"certificate_pinned,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Blocked   bool      `json:"blocked"`
	Reason    string    `json:"blocked_reason,omitempty"`
}

func viewRecipient(t *custos.Tenant, r *custos.Recipient) recipientView {
	kind := r.Kind
	if kind == "" {
		kind = custos.RecipientWebhook
	}
	v := recipientView{ID: r.ID, Name: r.Name, Kind: kind, URL: r.URL, Region: r.Region, Domain: r.Domain,
		Pinned: len(r.CertificatePEM) > 0, CreatedAt: r.CreatedAt}
	if err := t.Settings.CheckDestination(t.Region, "recipient "+r.Name, r.Region); err != nil {
		v.Blocked, v.Reason = true, custos.ErrorMessage(err)
	}
	return v
}

func handleCreateRecipient(log *slog.Logger, eng *rights.Engine) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		in, err := decodeBody[struct {
			Name           string `json:"name"`
			Kind           string `json:"kind"`
			URL            string `json:"url"`
			Secret         string `json:"secret"`
			Region         string `json:"region"`
			Domain         string `json:"domain"`
			CertificatePEM string `json:"certificate_pem"`
		}](w, r, maxBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		rc, err := eng.AddRecipient(r.Context(), t, rights.RecipientInput{Name: in.Name, Kind: in.Kind, URL: in.URL,
			Secret: in.Secret, Region: in.Region, Domain: in.Domain, CertificatePEM: in.CertificatePEM, Actor: audit.ActorTenant})
		if err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusCreated, viewRecipient(t, rc))
	}
}

func handleListRecipients(log *slog.Logger, store custos.RecipientStore) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		p, err := readPage(r, "recipients")
		if err != nil {
			writeError(w, log, err)
			return
		}
		all, err := store.Recipients(r.Context(), t.ID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		list, next := pageSlice(all, p, func(rc *custos.Recipient) string { return rc.ID })
		out := make([]recipientView, len(list))
		for i, rc := range list {
			out[i] = viewRecipient(t, rc)
		}
		writeJSON(w, http.StatusOK, listPage("recipients", out, next))
	}
}

func handleDeleteRecipient(log *slog.Logger, store custos.RecipientStore) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		if err := store.DeleteRecipient(r.Context(), t.ID, r.PathValue("id")); err != nil {
			writeError(w, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}
