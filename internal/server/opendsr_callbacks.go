package server

import (
	"log/slog"
	"net/http"

	"github.com/custos-dev/custos/internal/rights"
)

// maxCallbackBody bounds a status callback: a few short fields.
const maxCallbackBody = 64 << 10

// handleOpenDSRCallback takes a status callback from an OpenDSR recipient
// a request was forwarded to. It needs no API key: the token in the path
// is unguessable, and the engine accepts the callback only if its
// signature verifies with the recipient's processor certificate. A
// refused signature is answered 401, which the specification tells the
// processor to treat as final. Errors take the OpenDSR shape.
func handleOpenDSRCallback(log *slog.Logger, eng *rights.Engine) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(w, r, maxCallbackBody)
		if err != nil {
			writeOpenDSRError(w, log, err)
			return
		}
		if err := eng.OpenDSRCallback(r.Context(), r.PathValue("token"), r.Header, body); err != nil {
			// The recipient's signature is the credential here.
			w.Header().Set("WWW-Authenticate", `OpenDSR-Signature realm="custos"`)
			writeOpenDSRError(w, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
