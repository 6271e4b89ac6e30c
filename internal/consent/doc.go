// Package consent is the consent ledger (GDPR Art. 7) and the "may we
// send?" decision.
//
// The ledger is append-only: every grant and withdrawal is a
// custos.ConsentRecord, sealed with its subject's key and stored under the
// subject, so that erasing the subject erases its ledger. A subject's
// current consent, its State, is derived from the ledger; no record means
// no consent.
//
// # Precedence
//
// Records are ordered by their time, then by the sequence number the
// writer gave them (the order they were recorded in). For each purpose and
// channel the latest record wins. A record for channel "" speaks for every
// channel: when the question is (purpose, channel), the latest of the
// record for exactly that channel and the record for "" decides. So a
// withdrawal from every channel overrides an earlier grant on e-mail, and
// a later grant on e-mail overrides an earlier withdrawal from every
// channel for e-mail only.
//
// # Decide
//
// Decide is the single answer to "may this message go to this subject":
// erased > suppressed > restricted > objected > no consent or withdrawn.
// An Art. 21 objection to direct marketing blocks every message Decide is
// asked about, whatever the purpose is named: Decide gates campaign
// messages, and a message a controller sends to a person to engage them is
// direct marketing in the sense of Art. 21(2)–(3), whether the tenant
// calls the purpose "marketing", "newsletter" or "personalization".
//
// Writes go through a Writer — internal/subjects' Pipeline — so that they
// are ordered with ingestion and with subject merges, which carry a merged
// subject's ledger over to the survivor.
package consent
