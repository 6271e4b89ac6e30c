package pebble

import (
	"encoding/binary"
	"time"

	"github.com/custos-dev/custos"
)

const (
	prefixTenant = 0x01
	prefixData   = 0x02
	// prefixEvent leads the events, above every other key, newest day
	// first (see eventDayPrefix).
	prefixEvent = 0x10

	kindSubject = 's'
	kindIndex   = 'i'
	kindSeen    = 'd'
	// kindObserved holds one record per tenant: the categories of
	// personal data seen at ingestion (the record of processing).
	kindObserved = 'b'
	// kindRetention holds one record per tenant: the retention sweep's
	// progress.
	kindRetention = 'w'
	// kindMerged maps a subject merged into another to the survivor.
	kindMerged = 'z'
	// kindPurge holds, per deleted subject, the day buckets its events
	// were in, until the bytes are purged from the files.
	kindPurge = 'q'

	subProfile = 'p'
	// subDay is a subject's index of the day buckets holding its events.
	subDay = 'b'
)

const (
	tenantPrefixLen  = 1 + 16
	subjectPrefixLen = tenantPrefixLen + 1 + 16
	// dayLen is the size of a day bucket number in a key.
	dayLen = 4
	// bucketSubjectLen is the length of the prefix holding one subject's
	// events of one day.
	bucketSubjectLen = 1 + dayLen + 16 + 16
	eventKeyLen      = bucketSubjectLen + 8 + 16
	dayIndexKeyLen   = subjectPrefixLen + 1 + dayLen
)

// day is a bucket of events: the days since 1970-01-01 UTC of their time
// (negative before). Events of one day share one key range, so that new
// writes, which are dated now, overlap only the latest bucket.
type day int32

func dayOf(t time.Time) day {
	const nsPerDay = int64(24 * time.Hour)
	n := t.UnixNano()
	d := n / nsPerDay
	if n%nsPerDay < 0 {
		d-- // floor, not truncation, before 1970
	}
	return day(d)
}

// start returns the first instant of d (midnight UTC), dayOf's inverse.
func (d day) start() time.Time {
	return time.Unix(int64(d)*int64(24*time.Hour/time.Second), 0).UTC()
}

// appendDay encodes d so that byte order is day order.
func appendDay(dst []byte, d day) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(d)^(1<<31))
}

func decodeDay(b []byte) day { return day(int32(binary.BigEndian.Uint32(b) ^ (1 << 31))) }

// eventDayPrefix is the start of every tenant's events of one day. Days
// run newest first and above every other key, so that a memtable flush —
// which mixes today's events with keys written at random places (dedupe
// records, identifier index, profiles) — makes tables whose key spans
// reach, past the random keys, only into the newest days, never into the
// older days' tables.
func eventDayPrefix(dst []byte, d day) []byte {
	dst = append(dst, prefixEvent)
	return binary.BigEndian.AppendUint32(dst, ^(uint32(d) ^ (1 << 31)))
}

func decodeEventDay(b []byte) day { return day(int32(^binary.BigEndian.Uint32(b) ^ (1 << 31))) }

// dayPrefix is the start of a tenant's events of one day.
func dayPrefix(dst []byte, t custos.TenantID, d day) []byte {
	return append(eventDayPrefix(dst, d), t[:]...)
}

// bucketPrefix is the start of a subject's events of one day.
func bucketPrefix(dst []byte, t custos.TenantID, d day, s custos.SubjectID) []byte {
	return append(dayPrefix(dst, t, d), s[:]...)
}

// dayIndexKey records that the subject has (or had) events on day d.
func dayIndexKey(dst []byte, t custos.TenantID, s custos.SubjectID, d day) []byte {
	dst = append(subjectPrefix(dst, t, s), subDay)
	return appendDay(dst, d)
}

func purgeKey(dst []byte, t custos.TenantID, s custos.SubjectID) []byte {
	dst = tenantDataPrefix(dst, t)
	dst = append(dst, kindPurge)
	return append(dst, s[:]...)
}

func tenantKey(t custos.TenantID) []byte {
	return append([]byte{prefixTenant}, t[:]...)
}

func tenantDataPrefix(dst []byte, t custos.TenantID) []byte {
	dst = append(dst, prefixData)
	return append(dst, t[:]...)
}

func subjectPrefix(dst []byte, t custos.TenantID, s custos.SubjectID) []byte {
	dst = tenantDataPrefix(dst, t)
	dst = append(dst, kindSubject)
	return append(dst, s[:]...)
}

// prefixEnd returns the smallest key greater than every key with the prefix.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // every byte was 0xff: no upper bound
}

// sortableTime encodes t so that byte order is time order, before 1970 too.
func sortableTime(dst []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(t.UnixNano())^(1<<63))
}

func decodeTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)^(1<<63))).UTC()
}

func eventKey(dst []byte, t custos.TenantID, s custos.SubjectID, at time.Time, id custos.MessageHash) []byte {
	dst = bucketPrefix(dst, t, dayOf(at), s)
	dst = sortableTime(dst, at)
	return append(dst, id[:]...)
}

func profileKey(dst []byte, t custos.TenantID, s custos.SubjectID) []byte {
	return append(subjectPrefix(dst, t, s), subProfile)
}

func indexKey(dst []byte, t custos.TenantID, h custos.IdentifierHash) []byte {
	dst = tenantDataPrefix(dst, t)
	dst = append(dst, kindIndex)
	return append(dst, h[:]...)
}

// tenantRecordKey is the key of a tenant's one record of a kind.
func tenantRecordKey(t custos.TenantID, kind byte) []byte {
	return append(tenantDataPrefix(nil, t), kind)
}

func seenKey(dst []byte, t custos.TenantID, id custos.MessageHash) []byte {
	dst = tenantDataPrefix(dst, t)
	dst = append(dst, kindSeen)
	return append(dst, id[:]...)
}

// parseEventKey reads the subject, time and message hash of an event key.
func parseEventKey(k []byte) (s custos.SubjectID, at time.Time, id custos.MessageHash, ok bool) {
	if len(k) != eventKeyLen || k[0] != prefixEvent {
		return s, at, id, false
	}
	copy(s[:], k[1+dayLen+16:bucketSubjectLen])
	at = decodeTime(k[bucketSubjectLen : bucketSubjectLen+8])
	copy(id[:], k[bucketSubjectLen+8:])
	return s, at, id, true
}
