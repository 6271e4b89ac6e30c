package audit

// The actors audit entries name, one spelling each: "who:by what means".
const (
	// ActorTenant is a tenant acting through the API with its secret key.
	ActorTenant = "tenant:secret-key"
	// ActorDevice is a device acting with the tenant's write key (/v1/privacy).
	ActorDevice = "device:write-key"
	// ActorOpenDSRController is a controller acting over OpenDSR.
	ActorOpenDSRController = "opendsr:controller"
	// ActorOperator is the operator acting with the operator token.
	ActorOperator = "operator"
	// ActorSubject is the data subject acting through an unsubscribe link.
	ActorSubject = "subject:unsubscribe-link"
	// ActorSystem is Custos itself (background work).
	ActorSystem = "system"
	// ActorRetention is the retention sweep.
	ActorRetention = "system:retention"
	// ActorIngest is ingestion, in its periodic summaries.
	ActorIngest = "system:ingest"
	// ActorOpenDSRForwarder is Custos forwarding a request to an OpenDSR
	// recipient (internal/rights spells it itself).
	ActorOpenDSRForwarder = "custos:opendsr"
)
