// Package pebble is the embedded store of Custos, on CockroachDB's Pebble
// LSM engine. It implements custos.Store for data (events, profiles, the
// identifier index, deduplication records) and custos.KeyStore for wrapped
// encryption keys, each in a database of its own so that data and keys are
// backed up apart.
//
// Data keys are laid out so that one tenant is one key range, except its
// events, which lead with their day, newest first, above every other key
// (key layout version 2; see layout.go and Migrate for version 1, which
// put events under their subject):
//
//	0x00 "layout"                                  key layout version
//	0x01 <tenant>                                  tenant record
//	0x02 <tenant> 's' <subject> 'b' <day>          the subject has events that day
//	0x02 <tenant> 's' <subject> 'k' <time> <seq>   sealed consent record
//	0x02 <tenant> 's' <subject> 'p'                sealed profile
//	0x02 <tenant> 's' <subject> 'x' <time> <campaign>  sealed send record
//	0x02 <tenant> 'q' <subject>                    deleted, bytes not yet purged: its days
//	0x02 <tenant> 'i' <identifier hash>            subject id
//	0x02 <tenant> 'd' <message hash>               subject id, time received
//	0x02 <tenant> 'r' <request id>                 request (no personal data)
//	0x02 <tenant> 'g' <subject>                    subject flags
//	0x02 <tenant> 't' <identifier hash>            erasure tombstone
//	0x02 <tenant> 'o' <delivery id>                pending delivery (body sealed)
//	0x02 <tenant> 'c' <recipient id>               recipient
//	0x02 <tenant> 'm' <campaign id>                campaign (definition sealed)
//	0x02 <tenant> 'u' <console user name>          the user's last TOTP step
//	0x03 <tenant> <seq>                            audit entry (survives the tenant)
//	0x05 <next attempt time> <tenant> <delivery>   due index of the outbox
//	0x06 ...                                       incidents
//	0x07 <tenant> <kind> <token hash>              session (see sessions.go)
//	0x10 <^day> <tenant> <subject> <time> <msg>    sealed event
//
// A day is the UTC day of the event's time. New events, dated about now,
// all land in the newest day, so a memtable flush overlaps only that
// day's range — the newest days come first in the event range and the
// event range after every other key, so that even a flushed table whose
// span runs from keys written at random places (dedupe records, the
// identifier index) to today's events reaches no older day — and older
// days settle in the bottom level and stay there,
// instead of every flush overlapping every subject's history (see
// docs/benchmarks-storage.md for what that is worth). Reading
// or deleting a subject's events visits the days its index names, one
// range each. Deleting a subject hides everything at once with range
// deletions; its bytes leave the files in the next purge pass (Purger,
// at most PurgeInterval later), which compacts every queued subject's
// spans together. The ids in keys are random or keyed hashes, never
// identifiers.
package pebble
