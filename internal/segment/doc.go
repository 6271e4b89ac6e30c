// Package segment turns HTTP bodies in the Segment tracking spec into
// validated, normalised [custos.Message] values.
//
// It accepts what the real Segment and RudderStack clients send: batches
// with a batch-level context, single messages on the long and short paths
// (/v1/track, /v1/t, ...), gzip bodies, any Content-Type, timestamps with
// or without sentAt, numeric user ids and message ids of any shape.
//
// A body is refused as a whole only when it cannot be read at all (not
// JSON, too large, too deep, too many messages); otherwise every message
// is judged on its own and the invalid ones come back as [Rejection]s
// beside the valid ones, so one bad event never costs a client its batch.
//
// Free-form parts (properties, traits, context) are never decoded into
// maps: they are checked, compacted and copied as raw JSON.
package segment
