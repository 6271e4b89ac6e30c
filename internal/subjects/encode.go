package subjects

import (
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/custos-dev/custos"
)

// appendEvent encodes a message as the JSON of a custos.Event. It is
// written by hand because it runs for every ingested message: the raw
// parts (properties, traits, context) come from the decoder already
// compact and valid, so they are copied as they are instead of being
// re-validated by a general encoder.
func appendEvent(dst []byte, m *custos.Message) []byte {
	dst = append(dst, `{"message_id":`...)
	dst = appendString(dst, m.MessageID)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, string(m.Type))
	dst = appendField(dst, "event", m.Event)
	dst = appendField(dst, "name", m.Name)
	dst = appendField(dst, "user_id", m.UserID)
	dst = appendField(dst, "anonymous_id", m.AnonymousID)
	dst = appendField(dst, "previous_id", m.PreviousID)
	dst = appendField(dst, "group_id", m.GroupID)
	dst = appendRaw(dst, "properties", m.Properties)
	dst = appendRaw(dst, "traits", m.Traits)
	dst = appendRaw(dst, "context", m.Context)
	dst = append(dst, `,"timestamp":"`...)
	dst = m.Timestamp.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","received_at":"`...)
	dst = m.ReceivedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}

func appendString(dst []byte, s string) []byte {
	// Invalid UTF-8 becomes U+FFFD; the error only reports that it happened.
	dst, _ = jsontext.AppendQuote(dst, s)
	return dst
}

func appendField(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendString(dst, v)
}

func appendRaw(dst []byte, name string, v []byte) []byte {
	if len(v) == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return append(dst, v...)
}
