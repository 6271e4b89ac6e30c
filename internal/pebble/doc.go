// Package pebble is the embedded store of Custos, on CockroachDB's Pebble
// LSM engine. It implements custos.Store for data (events, profiles, the
// identifier index, deduplication records) and custos.KeyStore for wrapped
// encryption keys, each in a database of its own so that data and keys are
// backed up apart.
//
// Data keys are laid out so that one tenant is one key range and one
// subject inside it is one contiguous range:
//
//	0x01 <tenant>                          tenant record
//	0x02 <tenant> 's' <subject> 'e' <time> <msg>   sealed event
//	0x02 <tenant> 's' <subject> 'p'               sealed profile
//	0x02 <tenant> 's' <subject> 'x' <time> <campaign>  sealed send record
//	0x02 <tenant> 'i' <identifier hash>           subject id
//	0x02 <tenant> 'd' <message hash>              subject id, time received
//	0x02 <tenant> 'r' <request id>                request (no personal data)
//	0x02 <tenant> 'g' <subject>                   subject flags
//	0x02 <tenant> 't' <identifier hash>           erasure tombstone
//	0x02 <tenant> 'o' <delivery id>               pending delivery (body sealed)
//	0x02 <tenant> 'c' <recipient id>              recipient
//	0x02 <tenant> 'm' <campaign id>               campaign (definition sealed)
//	0x03 <tenant> <seq>                           audit entry (survives the tenant)
//	0x05 <next attempt time> <tenant> <delivery>  due index of the outbox
//
// so erasing one subject is one range deletion plus a compaction of that
// span, and the ids in keys are random or keyed hashes, never identifiers.
package pebble
