// Package campaign sends consent-gated messages to audiences of a
// tenant's subjects, over a signed webhook or e-mail.
//
// A campaign names a purpose and a channel, an audience over profile
// traits and events, and a message as templates over the recipient's
// traits. Preview counts the audience and what would exclude each member;
// Send runs in the background, one recipient at a time in subject order,
// and checks each one again at the moment of sending: the consent ledger's
// current state for that purpose and channel (no record means no consent),
// suppression, restriction, objection, erasure, and the tenant's daily
// cap of marketing messages. A withdrawal that lands during the run stops
// every message not yet sent.
//
// Every message sent leaves a send record in the subject's own data,
// sealed with its key (access exports show it; erasure removes it; the
// frequency cap counts it) and a pseudonymous audit entry. A run survives
// a restart: progress is stored with a cursor, and a recipient's send
// record, written before the message goes, keeps a resumed run from
// sending it twice.
//
// E-mail carries a personal one-click unsubscribe link (RFC 8058): an
// unforgeable token sealed with the tenant's key, naming the subject,
// purpose and channel; a POST to it withdraws that consent at once.
package campaign
