// Package subjects owns every change to data subjects' data: one ordered
// writer applies ingested messages, consent records, suppression and
// restriction flags, erasure, expiry and rectification, and Reader reads
// the sealed data back.
//
// One writer goroutine owns every change to tenants' data: it drops
// duplicates, resolves each message to a subject (linking and merging
// identifiers), seals events and profiles with the subject's key and applies
// them to the store in order. Work that needs no ordering — keyed hashes of
// identifiers and message ids, encoding events — happens before, on the
// callers' goroutines. Acknowledgements wait for the write-ahead-log sync,
// which concurrent requests share (group commit), and are given in order,
// so an acknowledged message never depends on a write that could still be
// lost.
//
// Decoding and normalising the Segment spec into custos.Message is not
// here but in internal/segment; this package starts from messages.
package subjects
