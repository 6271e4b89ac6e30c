package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/processing"
	"github.com/custos-dev/custos/internal/segment"
	"github.com/custos-dev/custos/internal/subjects"
)

// handleProcessingRecord answers the tenant's record of processing (Art.
// 30(2)) as JSON, or as a page with ?format=html.
func handleProcessingRecord(log *slog.Logger, reader *subjects.Reader, recipients custos.RecipientStore, processor processing.Processor, security processing.Security, now func() time.Time) tenantHandler {
	return func(w http.ResponseWriter, r *http.Request, t *custos.Tenant) {
		format := r.URL.Query().Get("format")
		if format != "" && format != "json" && format != "html" {
			writeError(w, log, custos.Errorf(custos.Invalid, "format %q must be json or html", format))
			return
		}
		observed, err := reader.Observed(r.Context(), t.ID)
		if err != nil {
			writeError(w, log, err)
			return
		}
		in := processing.Inputs{Tenant: t, Processor: processor, Security: security, Now: now(),
			IPv4Prefix: segment.IPv4Bits, IPv6Prefix: segment.IPv6Bits}
		for _, c := range observed {
			in.Observed = append(in.Observed, processing.Category{Name: c.Name, FirstSeen: c.FirstSeen})
		}
		if recipients != nil {
			if in.Recipients, err = recipients.Recipients(r.Context(), t.ID); err != nil {
				writeError(w, log, err)
				return
			}
		}
		rec := processing.Build(in)
		if format == "html" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if err := rec.WriteHTML(w); err != nil {
				log.Error("render record of processing", "tenant", t.ID, "err", err)
			}
			return
		}
		writeJSON(w, http.StatusOK, rec)
	}
}
