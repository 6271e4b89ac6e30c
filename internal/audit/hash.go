package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/custos-dev/custos"
)

// Genesis is the PrevHash of the first entry of every chain: 64 zeros, the
// hex form of 32 zero bytes.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// entryDomain separates entry hashes from every other use of SHA-256.
const entryDomain = "custos audit entry v1"

// Hash returns the hash an entry must carry: the lowercase hex SHA-256 of
// a canonical encoding of its fields, the Hash field itself excluded. It
// is exported so that offline verifiers use the exact same encoding, which
// is, in order:
//
//	field("custos audit entry v1")
//	seq as 8 bytes big-endian
//	field(time in RFC 3339 with nanoseconds, UTC: time.RFC3339Nano)
//	field(actor) field(action) field(subject) field(request_id)
//	field(details: the stored raw JSON bytes, empty if none)
//	field(prev_hash as its hex string)
//
// where field(b) is len(b) as 8 bytes big-endian followed by b. Length
// prefixes make the encoding unambiguous: entries that differ in any field
// never encode to the same bytes.
func Hash(e custos.AuditEntry) string {
	ts := e.Time.UTC().Format(time.RFC3339Nano)
	n := 8*8 + len(entryDomain) + len(ts) + len(e.Actor) + len(e.Action) + len(e.Subject) +
		len(e.RequestID) + len(e.Details) + len(e.PrevHash)
	b := make([]byte, 0, n)
	b = appendField(b, entryDomain)
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = appendField(b, ts)
	b = appendField(b, e.Actor)
	b = appendField(b, e.Action)
	b = appendField(b, e.Subject)
	b = appendField(b, e.RequestID)
	b = appendField(b, e.Details)
	b = appendField(b, e.PrevHash)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func appendField[T ~string | ~[]byte](b []byte, s T) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}
