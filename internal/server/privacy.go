package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/rights"
	"github.com/custos-dev/custos/internal/tenants"
)

// privacyRequest is a right exercised from a device, with the write key.
type privacyRequest struct {
	Type        custos.RequestType `json:"type"`
	UserID      string             `json:"userId"`
	AnonymousID string             `json:"anonymousId"`
	UserHash    string             `json:"user_hash"`
	WriteKey    string             `json:"writeKey"`
}

// handlePrivacy takes data-subject requests from the SDK path. The write
// key is public, so it proves nothing about who asks: suppression is
// honoured at once (dropping data is the safe direction); access and
// erasure run at once only with a valid user_hash, and otherwise wait for
// the controller to approve them.
func handlePrivacy(log *slog.Logger, reg *tenants.Registry, eng *rights.Engine, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in privacyRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
			writeError(w, log, custos.Errorf(custos.Invalid, "body is not a JSON privacy request: %v", err))
			return
		}
		key, _, _ := r.BasicAuth()
		if key == "" {
			key = in.WriteKey
		}
		t, ok := reg.ByWriteKey(key)
		if !ok {
			writeError(w, log, custos.Errorf(custos.Unauthorized, "missing or unknown write key"))
			return
		}
		if misdirected(w, log, reg, t) {
			return
		}
		id := custos.Identifier{Type: custos.UserID, Value: in.UserID}
		if in.UserID == "" {
			id = custos.Identifier{Type: custos.AnonymousID, Value: in.AnonymousID}
		}
		if id.Value == "" {
			writeError(w, log, custos.Errorf(custos.Invalid, "give userId or anonymousId"))
			return
		}
		input := rights.Input{Type: in.Type, Identity: id, Source: "sdk", Actor: "device:write-key"}
		var req *custos.Request
		var err error
		switch in.Type {
		case custos.Suppress:
			req, err = eng.Create(r.Context(), t.ID, input)
		case custos.Erasure, custos.Access:
			if in.UserID != "" && reg.VerifyUserHash(t, in.UserID, in.UserHash) {
				req, err = eng.Create(r.Context(), t.ID, input)
			} else {
				req, err = eng.CreatePending(r.Context(), t.ID, input)
			}
		default:
			err = custos.Errorf(custos.Invalid, "type must be suppress, erasure or access")
		}
		if err != nil {
			writeError(w, log, err)
			return
		}
		// The device learns the request's id and status, nothing held.
		writeJSON(w, http.StatusAccepted, map[string]any{"request_id": req.ID, "type": req.Type, "status": req.Status})
	})
}
