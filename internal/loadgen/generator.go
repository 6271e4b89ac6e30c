package loadgen

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"
)

// A generator renders Segment messages and batches from templates. It is
// safe for concurrent use: rendering reads it and writes only to dst.
type generator struct {
	k        keys
	users    uint64
	single   bool // messages are sent alone, so they carry library and sentAt
	track    []template
	identify []template
	octets   [256]string // "0" to "255", so IP addresses cost no formatting

	// With few enough users, their fields rendered once: field f of user u
	// is userData[userOff[u*userFields+f]:userOff[u*userFields+f+1]].
	userData []byte
	userOff  []uint32
}

const (
	identifyVariants = 8
	mobileEvery      = 4 // one template in mobileEvery has a mobile context
)

// newGenerator prepares the templates for a run. Single selects messages
// to be sent alone rather than in a batch.
func newGenerator(seed int64, users int, single bool) *generator {
	g := &generator{k: newKeys(seed), users: uint64(max(users, 1)), single: single}
	for i := range g.octets {
		g.octets[i] = strconv.Itoa(i)
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x6c6f616467656e))
	add := func(list *[]template, path string, m any) {
		js, err := json.Marshal(m)
		if err != nil {
			panic(err) // the template types always marshal
		}
		t, err := compile(path, js)
		if err != nil {
			panic(err) // the placeholders above are all known
		}
		*list = append(*list, t)
	}
	// The mix of events and of web and mobile is fixed, so that the mean
	// message size does not depend on the seed; only details do.
	for _, ev := range trackEvents {
		for range ev.share {
			add(&g.track, "/v1/track", newTrack(r, ev, len(g.track)%mobileEvery == 0, single))
		}
	}
	for i := range identifyVariants {
		add(&g.identify, "/v1/identify", newIdentify(r, i%mobileEvery == 0, single))
	}
	g.cacheUsers()
	return g
}

// pick returns the template of message n: about one in identifyEvery is an
// identify, chosen by hash rather than position so that every user gets one
// over time.
func (g *generator) pick(n uint64) *template {
	h := mix(n ^ g.k.pick)
	if h%identifyEvery == 0 {
		return &g.identify[(h>>8)%uint64(len(g.identify))]
	}
	return &g.track[(h>>8)%uint64(len(g.track))]
}

// user returns the user that message n belongs to: users in turn.
func (g *generator) user(n uint64) uint64 { return n % g.users }

// appendMessage appends message n rendered from t, with timestamp ts.
func (g *generator) appendMessage(dst []byte, t *template, n uint64, ts []byte) []byte {
	u := g.user(n)
	for i := range t.parts {
		p := &t.parts[i]
		dst = append(dst, p.lit...)
		switch p.slot {
		case slotMessageID:
			dst = appendUUID(dst, mix(n+g.k.message), mix(n+g.k.message2))
		case slotAnonymousID:
			if f := g.cached(u, fieldAnonymousID); f != nil {
				dst = append(dst, f...)
			} else {
				dst = g.appendAnonymousID(dst, u)
			}
		case slotUserID:
			if f := g.cached(u, fieldUserID); f != nil {
				dst = append(dst, f...)
			} else {
				dst = appendUserID(dst, u)
			}
		case slotTimestamp:
			dst = append(dst, ts...)
		case slotIP:
			if f := g.cached(u, fieldIP); f != nil {
				dst = append(dst, f...)
			} else {
				dst = g.appendIP(dst, u)
			}
		case slotName:
			h := mix(u + g.k.user)
			dst = append(dst, firstNames[(h>>32)%uint64(len(firstNames))]...)
			dst = append(dst, ' ')
			dst = append(dst, lastNames[(h>>40)%uint64(len(lastNames))]...)
		case slotPlan:
			h := mix(u + g.k.user)
			dst = append(dst, plans[(h>>48)%uint64(len(plans))]...)
		}
	}
	return dst
}

func (g *generator) appendAnonymousID(dst []byte, u uint64) []byte {
	return appendUUID(dst, mix(u+g.k.anon), mix(u+g.k.anon2))
}

func appendUserID(dst []byte, u uint64) []byte {
	return strconv.AppendUint(append(dst, "user-"...), u, 10)
}

func (g *generator) appendIP(dst []byte, u uint64) []byte {
	h := mix(u + g.k.user)
	dst = append(dst, g.octets[1+h%223]...) // no 0.x, no multicast
	dst = append(dst, '.')
	dst = append(dst, g.octets[h>>8&0xff]...)
	dst = append(dst, '.')
	dst = append(dst, g.octets[h>>16&0xff]...)
	dst = append(dst, '.')
	return append(dst, g.octets[1+(h>>24)%254]...)
}

// The per-user fields cached, in their order in userCache.
const (
	fieldAnonymousID = iota
	fieldUserID
	fieldIP
	userFields
)

// maxCachedUsers bounds the per-user cache to a few megabytes; runs over
// more users render those fields each time.
const maxCachedUsers = 1 << 16

// cacheUsers renders the per-user fields of every user once, when there
// are few enough: they are a third of the cost of rendering a message.
func (g *generator) cacheUsers() {
	if g.users > maxCachedUsers {
		return
	}
	g.userOff = make([]uint32, 0, g.users*userFields+1)
	g.userData = make([]byte, 0, int(g.users)*(uuidLen+len("user-65535")+len("255.255.255.255")))
	for u := range g.users {
		g.userOff = append(g.userOff, uint32(len(g.userData)))
		g.userData = g.appendAnonymousID(g.userData, u)
		g.userOff = append(g.userOff, uint32(len(g.userData)))
		g.userData = appendUserID(g.userData, u)
		g.userOff = append(g.userOff, uint32(len(g.userData)))
		g.userData = g.appendIP(g.userData, u)
	}
	g.userOff = append(g.userOff, uint32(len(g.userData)))
}

// cached returns field f of user u, or nil if users are not cached.
func (g *generator) cached(u uint64, f int) []byte {
	if g.userOff == nil {
		return nil
	}
	i := u*userFields + uint64(f)
	return g.userData[g.userOff[i]:g.userOff[i+1]]
}

// appendTimestamp appends t in UTC with milliseconds, a fixed-width form of
// the ISO 8601 the Segment spec uses.
func appendTimestamp(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
}

// build appends the body of request b, which carries messages first to
// first+count-1, and returns it with the path to POST it to. In single mode
// count must be 1.
func (g *generator) build(dst []byte, b, first uint64, count int, now time.Time) ([]byte, string) {
	var tsBuf [64]byte // room for what AppendFormat needs on the way
	ts := appendTimestamp(tsBuf[:0], now)
	if g.single {
		t := g.pick(first)
		return g.appendMessage(dst, t, first, ts), t.path
	}
	dst = append(dst, `{"messageId":"`...)
	dst = appendUUID(dst, mix(b+g.k.batch), mix(b+g.k.batch2))
	dst = append(dst, `","sentAt":"`...)
	dst = append(dst, ts...)
	dst = append(dst, `","batch":[`...)
	for i := range uint64(count) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = g.appendMessage(dst, g.pick(first+i), first+i, ts)
	}
	return append(dst, batchTrailer...), "/v1/batch"
}
