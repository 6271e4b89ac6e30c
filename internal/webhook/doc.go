// Package webhook delivers what Custos owes other systems over HTTP — a
// request's status callbacks, notices to a tenant's recipients (Art. 19) —
// as signed, durable, retried POSTs.
//
// An Outbox stores each delivery before it is attempted, with its body and
// signing secret sealed under the tenant's key (bodies may carry personal
// data), so a delivery survives a crash and is retried after a restart.
// Each attempt is an HTTP POST of the stored body, byte for byte, signed
// with HMAC-SHA-256 over its timestamp and body (Sign); receivers check it
// with Verify. A 2xx answer completes a delivery; 401 or 403 ends it as
// refused (the receiver rejected the signature, so repeating it cannot
// help); anything else is retried with exponential backoff.
//
// Delivery is at least once: a receiver may see one delivery more than once
// (a crash between its answer and the record of it) and should deduplicate
// by the X-Custos-Delivery header.
package webhook
