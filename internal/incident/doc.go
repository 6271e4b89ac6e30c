// Package incident is the breach register of GDPR Art. 33 and 34: the
// operator opens an incident, Custos counts for each affected tenant the
// approximate number of subjects and records in scope, and notifies each
// tenant at once — in the tenant API, by a signed webhook to its security
// contact URL (through the durable webhook outbox) and by e-mail to its
// security contact address (through the operator's SMTP server, retried
// durably) — and delivers every phased update and the closing note the
// same way. Every attempt and its outcome is kept in the tenant's
// notification record, and every step is in the audit log.
//
// For the tenant, the register keeps the 72-hour clock (Art. 33(1)),
// counted from the moment the tenant was notified, lists the affected
// subjects' identifiers so that the controller can tell them, and drafts
// the Art. 34 notice to them, saying when the Art. 34(3)(a) exception
// (data encrypted, keys safe) likely applies.
package incident
