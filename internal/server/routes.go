package server

import (
	"net/http"

	"github.com/custos-dev/custos/internal/opendsr"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// addRoutes is the whole HTTP surface of Custos.
func addRoutes(mux *http.ServeMux, d Deps) {
	// Segment-spec ingestion, with the browser short forms and the beacon path.
	ingestPaths := []string{
		"/v1/batch", "/v1/track", "/v1/identify", "/v1/alias", "/v1/page", "/v1/screen", "/v1/group",
		"/v1/b", "/v1/t", "/v1/i", "/v1/a", "/v1/p", "/v1/s", "/v1/g", "/beacon/v1/batch",
	}
	ingest := handleIngest(d.Log, d.Tenants, d.Ingest, d.Metrics, d.Tally, d.Limits, d.Now, d.Admission)
	for _, p := range ingestPaths {
		// Some clients add a trailing slash; {$} matches only that path.
		for _, p := range []string{p, p + "/{$}"} {
			mux.Handle("POST "+p, cors(ingest))
			mux.Handle("OPTIONS "+p, cors(http.HandlerFunc(handlePreflight)))
		}
	}

	// Rights from the device (write key).
	mux.Handle("POST /v1/privacy", cors(handlePrivacy(d.Log, d.Tenants, d.Rights, d.Now)))
	mux.Handle("OPTIONS /v1/privacy", cors(http.HandlerFunc(handlePreflight)))

	// Management API for the tenant's servers (secret key).
	secret := func(h tenantHandler) http.Handler {
		return requireSecret(d.Log, d.Tenants, limitAPI(d.Log, d.Admission, h))
	}
	mux.Handle("GET /api/v1/profiles", secret(handleFindProfile(d.Log, d.Reader, d.Audit)))
	mux.Handle("GET /api/v1/profiles/{subject_id}", secret(handleGetProfile(d.Log, d.Reader, d.Audit)))
	mux.Handle("GET /api/v1/profiles/{subject_id}/events", secret(handleListEvents(d.Log, d.Reader, d.Audit)))
	mux.Handle("GET /api/v1/profiles/{subject_id}/consents", secret(handleGetConsents(d.Log, d.Consent, d.Reader, d.Audit)))
	mux.Handle("POST /api/v1/consents", secret(handleRecordConsent(d.Log, d.Consent, d.Reader, d.Audit, d.Now)))
	mux.Handle("POST /api/v1/requests", secret(handleCreateRequest(d.Log, d.Rights, d.Now)))
	mux.Handle("GET /api/v1/requests", secret(handleListRequests(d.Log, d.Rights, d.Now)))
	mux.Handle("GET /api/v1/requests/{id}", secret(handleGetRequest(d.Log, d.Rights, d.Now)))
	mux.Handle("POST /api/v1/requests/{id}/cancel", secret(handleCancelRequest(d.Log, d.Rights, d.Now)))
	mux.Handle("POST /api/v1/requests/{id}/extend", secret(handleExtendRequest(d.Log, d.Rights, d.Now)))
	mux.Handle("GET /api/v1/requests/{id}/certificate", secret(handleCertificate(d.Log, d.Rights)))
	mux.Handle("GET /api/v1/requests/{id}/result", secret(handleResult(d.Log, d.Rights)))
	mux.Handle("POST /api/v1/requests/{id}/approve", secret(handleApproveRequest(d.Log, d.Rights, d.Now)))
	mux.Handle("POST /api/v1/requests/{id}/reject", secret(handleRejectRequest(d.Log, d.Rights, d.Now)))
	mux.Handle("POST /api/v1/recipients", secret(handleCreateRecipient(d.Log, d.Rights)))
	mux.Handle("GET /api/v1/recipients", secret(handleListRecipients(d.Log, d.Recipients)))
	mux.Handle("DELETE /api/v1/recipients/{id}", secret(handleDeleteRecipient(d.Log, d.Recipients)))
	mux.Handle("GET /api/v1/settings", secret(handleGetSettings()))
	mux.Handle("PATCH /api/v1/settings", secret(handlePatchSettings(d.Log, d.Tenants, d.Audit)))
	mux.Handle("GET /api/v1/processing-record", secret(handleProcessingRecord(d.Log, d.Reader, d.Recipients, d.Processor, d.Security, d.Now)))
	if d.Campaigns != nil {
		mux.Handle("POST /api/v1/campaigns", secret(handleCreateCampaign(d.Log, d.Campaigns)))
		mux.Handle("GET /api/v1/campaigns", secret(handleListCampaigns(d.Log, d.Campaigns)))
		mux.Handle("GET /api/v1/campaigns/{id}", secret(handleGetCampaign(d.Log, d.Campaigns)))
		mux.Handle("POST /api/v1/campaigns/{id}/preview", secret(handlePreviewCampaign(d.Log, d.Campaigns)))
		mux.Handle("POST /api/v1/campaigns/{id}/send", secret(handleSendCampaign(d.Log, d.Campaigns)))
		// The personal unsubscribe link of campaign messages (no auth: the
		// token is the capability).
		mux.Handle("GET /u/{token}", handleUnsubscribePage(d.Campaigns, d.Tenants))
		mux.Handle("POST /u/{token}", handleUnsubscribe(d.Log, d.Campaigns, d.Tenants))
	}
	mux.Handle("GET /api/v1/audit", secret(handleTenantAudit(d.Log, d.AuditStore)))
	mux.Handle("GET /api/v1/audit/checkpoint", secret(handleTenantCheckpoint(d.Log, d.Audit, d.SigningKey)))
	mux.Handle("GET /api/v1/incidents", secret(handleTenantIncidents(d.Log, d.Incidents, d.Now)))
	mux.Handle("GET /api/v1/incidents/{id}", secret(handleTenantIncident(d.Log, d.Incidents, d.Now)))
	mux.Handle("POST /api/v1/incidents/{id}/acknowledge", secret(handleAcknowledgeIncident(d.Log, d.Incidents, d.Now)))
	mux.Handle("GET /api/v1/incidents/{id}/affected-subjects", secret(handleAffectedSubjects(d.Log, d.Incidents)))
	mux.Handle("GET /api/v1/incidents/{id}/notice", secret(handleIncidentNotice(d.Log, d.Incidents)))

	// OpenDSR, Custos as processor (secret key); every answer signed. The
	// version 1 (OpenGDPR) names stay, with their own signature headers.
	if d.OpenDSRSigner != nil {
		for _, v := range []openDSRVersion{openDSRv2, openDSRv1} {
			hs := opendsr.HeaderSigner{Key: d.OpenDSRSigner, Domain: d.OpenDSRDomain, V1: v == openDSRv1}
			dsr := func(h http.Handler) http.Handler { return signBodies(d.Log, hs, h) }
			mux.Handle("GET "+v.base+"/discovery", dsr(secret(handleOpenDSRDiscovery(v))))
			mux.Handle("GET "+v.base+"/certificate", dsr(handleOpenDSRCertificate(d.OpenDSRCertPEM)))
			mux.Handle("POST "+v.base+v.requests, dsr(secret(handleOpenDSRSubmit(d.Log, d.Rights, d.OpenDSRSigner, d.OpenDSRParse, v, d.Now))))
			mux.Handle("GET "+v.base+v.requests+"/{id}", dsr(secret(handleOpenDSRStatus(d.Log, d.Rights, v))))
			mux.Handle("DELETE "+v.base+v.requests+"/{id}", dsr(secret(handleOpenDSRCancel(d.Log, d.Rights, v))))
		}
	}

	// OpenDSR, Custos as controller: status callbacks from the recipients
	// requests were forwarded to. The unguessable token in the path names
	// the request; the recipient's signature authenticates the callback.
	mux.Handle("POST /opendsr/v2/callbacks/{token}", handleOpenDSRCallback(d.Log, d.Rights))

	// Operator API (operator token).
	op := func(h http.Handler) http.Handler { return requireOperator(d.Log, d.OperatorToken, h) }
	mux.Handle("POST /admin/v1/tenants", op(handleCreateTenant(d.Log, d.Tenants, d.Audit)))
	mux.Handle("GET /admin/v1/tenants", op(handleListTenants(d.Tenants)))
	mux.Handle("GET /admin/v1/tenants/{id}", op(handleGetTenant(d.Log, d.Tenants)))
	mux.Handle("POST /admin/v1/tenants/{id}/keys/rotate", op(handleRotateKeys(d.Log, d.Tenants, d.Audit)))
	mux.Handle("DELETE /admin/v1/tenants/{id}", op(handleDeleteTenant(d.Log, d.Tenants, d.Audit, d.Now)))
	mux.Handle("GET /admin/v1/audit", op(handleOperatorAudit(d.Log, d.AuditStore)))
	mux.Handle("GET /admin/v1/audit/checkpoint", op(handleOperatorCheckpoint(d.Log, d.Audit, d.SigningKey)))
	mux.Handle("POST /admin/v1/incidents", op(handleOpenIncident(d.Log, d.Incidents, d.Tenants, d.Now)))
	mux.Handle("GET /admin/v1/incidents", op(handleListIncidents(d.Log, d.Incidents)))
	mux.Handle("GET /admin/v1/incidents/{id}", op(handleGetIncident(d.Log, d.Incidents, d.Tenants, d.Now)))
	mux.Handle("POST /admin/v1/incidents/{id}/updates", op(handleUpdateIncident(d.Log, d.Incidents, d.Tenants, d.Now)))
	mux.Handle("POST /admin/v1/incidents/{id}/close", op(handleCloseIncident(d.Log, d.Incidents, d.Tenants, d.Now)))
	if d.Backup != nil {
		mux.Handle("POST /admin/v1/backup", op(handleBackup(d.Log, d.Backup)))
	}

	// The node's public signing key, for offline verification.
	mux.Handle("GET /.well-known/custos/signing-key", handleSigningKey(d.SigningKey))

	// Observability.
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(d.Ready))
	if d.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(d.Metrics.Registry, promhttp.HandlerOpts{}))
	}
}
