package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/admission"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/metrics"
	"github.com/custos-dev/custos/internal/segment"
	"github.com/custos-dev/custos/internal/subjects"
	"github.com/custos-dev/custos/internal/tenants"
)

// ingestResponse is the 200 answer to an ingestion request. Messages
// invalid on their own are listed; the others were stored.
type ingestResponse struct {
	Success    bool                `json:"success"`
	Accepted   int                 `json:"accepted"`
	Duplicates int                 `json:"duplicates"`
	Rejected   []segment.Rejection `json:"rejected"`
}

func handleIngest(log *slog.Logger, reg *tenants.Registry, pipe *subjects.Pipeline, m *metrics.Metrics, tally *audit.Tally, limits segment.Limits, now func() time.Time, adm *Admission) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, ok := segment.PathKind(r.URL.Path)
		if !ok {
			writeError(w, log, custos.Errorf(custos.NotFound, "no ingestion endpoint at %s", r.URL.Path))
			return
		}
		// A key in the header or query is checked before the body is
		// decompressed or decoded; only a key in the body (beacons, which
		// cannot set headers) needs the body read first.
		var t *custos.Tenant
		var err error
		key := writeKeyOf(r)
		reserved := key != ""
		if reserved {
			if t, err = tenantByWriteKey(w, reg, key); err != nil {
				writeError(w, log, err)
				return
			}
			// A tenant out of tokens is turned away before its body is
			// read; one with a token left reserves it, so that of its
			// requests arriving together only the first is read.
			if err := adm.limit(w, log, admission.Ingest, t, key, 0); err != nil {
				writeError(w, log, err)
				return
			}
		}
		body, err := segment.ReadBody(r.Body, r.Header.Get("Content-Encoding"), limits)
		if err != nil {
			writeError(w, log, err)
			return
		}
		batch, err := segment.Decode(body, kind, now().UTC(), limits)
		if err != nil {
			writeError(w, log, err)
			return
		}
		if t == nil {
			key = batch.WriteKey
			if t, err = tenantByWriteKey(w, reg, key); err != nil {
				writeError(w, log, err)
				return
			}
		}
		if misdirected(w, log, reg, t) {
			return
		}
		judge := adm.limit
		if reserved {
			judge = adm.limitReserved
		}
		if err := judge(w, log, admission.Ingest, t, key, len(batch.Messages)); err != nil {
			writeError(w, log, err)
			return
		}
		if !t.Settings.KeepFullIP {
			// Data minimisation: only the network part of context.ip is stored.
			segment.TruncateIPs(batch.Messages)
		}
		res, err := pipe.IngestWith(r.Context(), t.ID, batch.Messages, consent.NewPolicy(&t.Settings))
		if err != nil {
			writeError(w, log, err)
			return
		}
		tally.Add(t.ID, res.Stored, res.Duplicates, len(batch.Rejected))
		tally.AddConsents(t.ID, res.Consents)
		if m != nil {
			m.Accepted.Add(float64(res.Stored))
			for reason, n := range map[string]int{"duplicate": res.Duplicates, "suppressed": res.Suppressed, "restricted": res.Restricted, "erased": res.Erased, "no_consent": res.NoConsent} {
				if n > 0 {
					m.Dropped.WithLabelValues(reason).Add(float64(n))
				}
			}
			m.ConsentRecorded.Add(float64(res.Consents))
			m.ConsentUnmapped.Add(float64(res.Unmapped))
			for _, rj := range batch.Rejected {
				m.Rejected.WithLabelValues(rj.Reason).Inc()
			}
		}
		rejected := batch.Rejected
		if rejected == nil {
			rejected = []segment.Rejection{}
		}
		writeJSON(w, http.StatusOK, ingestResponse{Success: true, Accepted: res.Stored, Duplicates: res.Duplicates, Rejected: rejected})
	})
}

// cors lets browser SDKs on any site post events. Ingestion needs no
// cookies, so no credentials are allowed.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if origin := r.Header.Get("Origin"); origin != "" {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
		} else {
			h.Set("Access-Control-Allow-Origin", "*")
		}
		next.ServeHTTP(w, r)
	})
}

func handlePreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "authorization, content-type, content-encoding, anonymousid, sentat")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}
