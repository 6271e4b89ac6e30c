package pebble

import (
	"encoding/binary"
	"time"

	"github.com/custos-dev/custos"
)

const (
	prefixTenant = 0x01
	prefixData   = 0x02

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

	subEvent   = 'e'
	subProfile = 'p'
)

const (
	tenantPrefixLen  = 1 + 16
	subjectPrefixLen = tenantPrefixLen + 1 + 16
	eventKeyLen      = subjectPrefixLen + 1 + 8 + 16
)

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
	dst = subjectPrefix(dst, t, s)
	dst = append(dst, subEvent)
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
	if len(k) != eventKeyLen || k[subjectPrefixLen] != subEvent {
		return s, at, id, false
	}
	copy(s[:], k[tenantPrefixLen+1:subjectPrefixLen])
	at = decodeTime(k[subjectPrefixLen+1 : subjectPrefixLen+9])
	copy(id[:], k[subjectPrefixLen+9:])
	return s, at, id, true
}
