// Package certificate issues and checks signed erasure certificates: the
// proof, handed to a controller when an erasure (GDPR Art. 17) completes,
// of what was erased, when each step happened, which recipients were told
// (Art. 19) and where the tenant's audit chain stood, signed with the
// node's Ed25519 key (see audit.LoadSigningKey).
//
// Version 1 certificates state when the erased bytes were purged from
// storage files (purged_at). Version 2 adds purge_due_at, for a store
// that purges in batched passes: the certificate is issued once the data
// is unreadable and deleted, and says when the pass that purges its bytes
// starts (purged_at is then the zero time).
//
// A certificate names the data subject only by a pseudonym, a keyed hash,
// never by an identifier: like the audit log it outlives the data it
// speaks of.
//
// # The file
//
// Marshal writes a certificate as indented JSON; Parse reads it back
// strictly, so that what a person reads in the file is what was verified:
// it refuses unknown fields, a key that differs from a field name only in
// case, a key repeated in one object, null, text that is not UTF-8, times
// not in the form Marshal writes, and anything after the certificate.
// VerifyFile is `custos certificate verify FILE --key PEM`: it parses the
// file and checks it against a public key in the PEM form of
// audit.PublicKeyPEM.
//
// # Verifying without Custos
//
// KeyID is the lowercase hex SHA-256 of the public key's PKIX DER
// encoding (the SubjectPublicKeyInfo), as printed by
//
//	openssl pkey -pubin -in key.pem -outform DER | sha256sum
//
// Signature is the standard base64 (with padding) of the Ed25519
// signature, by the key KeyID names, of these bytes, built from the
// certificate's fields in this order:
//
//	field("custos erasure certificate v1") — "…v2" in version 2
//	int(version)
//	field(request_id) field(tenant_id) field(region) field(subject)
//	counts(identifiers_erased)
//	counts(records_deleted)
//	time(shredded_at) time(deleted_at) time(purged_at)
//	time(purge_due_at) — in version 2 only
//	one byte: 1 if verified is true, 0 if false
//	int(number of recipients), then for each recipient in file order:
//	    field(recipient) field(status) time(at) field(detail)
//	int(audit_chain_head.seq) field(audit_chain_head.hash)
//	time(issued_at)
//	field(key_id)
//
// where
//
//   - int(n) is n as 8 bytes, big-endian (two's complement if negative);
//   - field(s) is int(length of s in bytes) followed by the UTF-8 bytes of s;
//   - counts(m) is int(number of entries) followed by, for each entry in
//     ascending byte order of its key, field(key) int(value);
//   - time(t) is field of t in UTC as RFC 3339 with fractional seconds
//     only as long as needed (Go's time.RFC3339Nano: 2026-02-28T10:00:00Z,
//     2026-02-28T10:00:00.5Z); an absent time, such as an omitted
//     recipient "at", is 0001-01-01T00:00:00Z.
//
// Every field but the signature is covered, and the length prefixes make
// the encoding unambiguous: certificates that differ in any field never
// sign the same bytes. Times in the file are already in exactly this form,
// so a verifier may use their strings as they are.
package certificate
