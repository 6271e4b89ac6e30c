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
	// ActorPrivacyCenter is the data subject acting in the tenant's
	// privacy center (/privacy/{tenant}), signed in by e-mail link or by
	// the tenant's app.
	ActorPrivacyCenter = "subject:privacy-center"
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

// How a person signed in to the console; ConsoleActor puts it in their
// actor.
const (
	// ConsoleUser: a console user the tenant created (name and password).
	ConsoleUser = "user"
	// ConsoleSecretKey: the tenant's secret key, with the name the
	// person gave.
	ConsoleSecretKey = "secret-key"
	// ConsoleOperator: the operator token, with the name the person gave.
	ConsoleOperator = "operator"
)

// ConsolePrefix begins the actor of every console action.
const ConsolePrefix = "console:"

// ConsoleActor is the actor of a person's actions in the console:
// "console:" + how they signed in + ":" + their name, e.g.
// "console:user:ada" or "console:secret-key:Ada Lovelace". Their actions
// land in the audit chain under their name.
func ConsoleActor(how, name string) string { return ConsolePrefix + how + ":" + name }
