package server

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/custos-dev/custos"
)

// recipientView is a recipient as the API shows it: never its secret.
// Blocked is set for a recipient outside the tenant's region once
// transfers are forbidden: nothing is sent to it, for the reason given.
type recipientView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	Region    string    `json:"region"`
	CreatedAt time.Time `json:"created_at"`
	Blocked   bool      `json:"blocked"`
	Reason    string    `json:"blocked_reason,omitempty"`
}

func viewRecipient(t *custos.Tenant, r *custos.Recipient) recipientView {
	v := recipientView{ID: r.ID, Name: r.Name, URL: r.URL, Region: r.Region, CreatedAt: r.CreatedAt}
	if err := t.Settings.CheckDestination(t.Region, "recipient "+r.Name, r.Region); err != nil {
		v.Blocked, v.Reason = true, custos.ErrorMessage(err)
	}
	return v
}

func handleCreateRecipient(log *slog.Logger, store custos.RecipientStore, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		var in struct {
			Name   string `json:"name"`
			URL    string `json:"url"`
			Secret string `json:"secret"`
			Region string `json:"region"`
		}
		if err := decodeJSON(r, &in); err != nil {
			writeError(w, log, err)
			return
		}
		in.Name = strings.TrimSpace(in.Name)
		u, err := url.Parse(in.URL)
		switch {
		case in.Name == "" || len(in.Name) > 200:
			err = custos.Errorf(custos.Invalid, "name is required (at most 200 characters)")
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			err = custos.Errorf(custos.Invalid, "url must be an absolute http or https URL")
		case len(in.Secret) < 16:
			err = custos.Errorf(custos.Invalid, "secret must be at least 16 characters: it signs every notice (HMAC-SHA-256)")
		}
		if err != nil {
			writeError(w, log, err)
			return
		}
		if in.Region == "" {
			in.Region = t.Region
		}
		if err := t.Settings.CheckDestination(t.Region, "recipient "+in.Name, in.Region); err != nil {
			writeError(w, log, err)
			return
		}
		b := make([]byte, 8)
		rand.Read(b)
		at := now().UTC()
		rc := &custos.Recipient{ID: "rcp_" + at.Format("20060102T150405") + "_" + hex.EncodeToString(b), Tenant: t.ID,
			Name: in.Name, URL: in.URL, Region: in.Region, Secret: []byte(in.Secret), CreatedAt: at}
		if err := store.PutRecipient(r.Context(), rc); err != nil {
			writeError(w, log, err)
			return
		}
		writeJSON(w, http.StatusCreated, viewRecipient(t, rc))
	}
}

func handleListRecipients(log *slog.Logger, store custos.RecipientStore) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		list, err := store.Recipients(r.Context(), t.ID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		out := make([]recipientView, len(list))
		for i, rc := range list {
			out[i] = viewRecipient(t, rc)
		}
		writeJSON(w, http.StatusOK, map[string]any{"recipients": out})
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
