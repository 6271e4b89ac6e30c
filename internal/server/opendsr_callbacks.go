package server

import (
	"io"
	"log/slog"
	"net/http"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/rights"
)

// maxCallbackBody bounds a status callback: a few short fields.
const maxCallbackBody = 64 << 10

// handleOpenDSRCallback takes a status callback from an OpenDSR recipient
// a request was forwarded to. It needs no API key: the token in the path
// is unguessable, and the engine accepts the callback only if its
// signature verifies with the recipient's processor certificate. A
// refused signature is answered 401, which the specification tells the
// processor to treat as final.
func handleOpenDSRCallback(log *slog.Logger, eng *rights.Engine) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxCallbackBody+1))
		if err != nil {
			writeError(w, log, custos.Errorf(custos.Invalid, "the callback body could not be read"))
			return
		}
		if len(body) > maxCallbackBody {
			writeError(w, log, custos.Errorf(custos.TooLarge, "the callback body is larger than %d bytes", maxCallbackBody))
			return
		}
		if err := eng.OpenDSRCallback(r.Context(), r.PathValue("token"), r.Header, body); err != nil {
			writeError(w, log, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
