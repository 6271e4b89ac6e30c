package server

import (
	"log/slog"
	"net/http"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/admission"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/rights"
	"github.com/custos-dev/custos/internal/tenants"
)

// maxPrivacyBody bounds a /v1/privacy body: a type and two identifiers.
const maxPrivacyBody = 64 << 10

// privacyRequest is a right exercised from a device, with the write key.
type privacyRequest struct {
	Type        custos.RequestType `json:"type"`
	UserID      string             `json:"userId"`
	AnonymousID string             `json:"anonymousId"`
	UserHash    string             `json:"user_hash"`
	WriteKey    string             `json:"writeKey"`
}

// privacyView is all a device learns of its request: its id, type and
// status, nothing held.
type privacyView struct {
	RequestID string               `json:"request_id"`
	Type      custos.RequestType   `json:"type"`
	Status    custos.RequestStatus `json:"status"`
}

// handlePrivacy takes data-subject requests from the SDK path. The write
// key is public, so it proves nothing about who asks: suppression is
// honoured at once (dropping data is the safe direction); access and
// erasure run at once only with a valid user_hash, and otherwise wait for
// the controller to approve them. A key sent in the header is checked
// before the body is read. The answer is 201 with the request's status
// when it is done, 202 when work is still pending.
func handlePrivacy(log *slog.Logger, reg *tenants.Registry, eng *rights.Engine, adm *Admission) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var t *custos.Tenant
		var err error
		key := writeKeyOf(r)
		if key != "" {
			if t, err = tenantByWriteKey(w, reg, key); err != nil {
				writeError(w, log, err)
				return
			}
		}
		in, err := decodeBody[privacyRequest](w, r, maxPrivacyBody)
		if err != nil {
			writeError(w, log, err)
			return
		}
		if t == nil {
			if t, err = tenantByWriteKey(w, reg, in.WriteKey); err != nil {
				writeError(w, log, err)
				return
			}
		}
		if misdirected(w, log, reg, t) {
			return
		}
		if key == "" {
			key = in.WriteKey
		}
		if err := adm.limit(w, log, admission.Privacy, t, key, 1); err != nil {
			writeError(w, log, err)
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
		input := rights.Input{Type: in.Type, Identity: id, Source: "sdk", Actor: audit.ActorDevice}
		var req *custos.Request
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
		status := http.StatusAccepted
		if req.Status.Final() {
			status = http.StatusCreated
		}
		writeJSON(w, status, privacyView{RequestID: req.ID, Type: req.Type, Status: req.Status})
	})
}
