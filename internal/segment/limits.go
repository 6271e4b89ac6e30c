package segment

// Limits bounds what [ReadBody] and [Decode] accept. A zero or negative
// field means the value in [DefaultLimits].
type Limits struct {
	// MaxMessage is the largest size in bytes of one message's own JSON.
	// A larger message is rejected alone ("message_too_large").
	MaxMessage int
	// MaxBatch is the largest size in bytes of a whole (decompressed) body.
	MaxBatch int
	// MaxMessages is the largest number of messages in one batch.
	MaxMessages int
	// MaxDepth is the deepest nesting of objects and arrays allowed anywhere
	// in a body; the body's own top-level object is depth 1.
	MaxDepth int
}

// DefaultLimits are the limits of Segment's own tracking API: 32 KB per
// message, 500 KB per batch, and generous bounds on count and nesting.
var DefaultLimits = Limits{MaxMessage: 32 << 10, MaxBatch: 500 << 10, MaxMessages: 2000, MaxDepth: 200}

// MaxIDLen is the longest identifier (messageId, userId, anonymousId,
// previousId, groupId) or event or page name a message may carry, in
// bytes: identifiers are hashed into index keys and names shown in lists,
// so they are short by nature; a longer one is rejected alone
// ("message_too_large").
const MaxIDLen = 1024

// orDefault returns l with every unset field taken from DefaultLimits.
func (l Limits) orDefault() Limits {
	if l.MaxMessage <= 0 {
		l.MaxMessage = DefaultLimits.MaxMessage
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = DefaultLimits.MaxBatch
	}
	if l.MaxMessages <= 0 {
		l.MaxMessages = DefaultLimits.MaxMessages
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	return l
}
