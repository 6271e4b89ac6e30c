package loadgen

import "slices"

// mix is the splitmix64 finaliser. It is a bijection on uint64, so distinct
// inputs give distinct outputs: IDs built from mix(counter) never collide.
func mix(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}

// keys are the per-run constants mixed into each kind of ID, so that the
// kinds do not share values. Message and batch ids come from the seed;
// the users — their anonymous ids, IPs, names and plans — are the same in
// every run, so a second run (another seed) is returning users with new
// events, as in production, not a new population.
type keys struct {
	message, message2 uint64 // message IDs
	batch, batch2     uint64 // batch IDs
	anon, anon2       uint64 // anonymous IDs
	user              uint64 // IP, name and plan of a user
	pick              uint64 // which template a message uses
}

func newKeys(seed int64) keys {
	var k keys
	s := uint64(seed)
	next := func() uint64 {
		s += 0x9e3779b97f4a7c15
		return mix(s)
	}
	k.message, k.message2 = next(), next()
	k.batch, k.batch2 = next(), next()
	k.pick = next()
	s = populationSeed
	k.anon, k.anon2 = next(), next()
	k.user = next()
	return k
}

// populationSeed fixes the simulated users across runs.
const populationSeed = 0x637573746f73 // "custos"

const uuidLen = 36

// appendUUID appends a version-4-shaped UUID holding all 64 bits of u, so
// distinct u give distinct UUIDs; v fills the remaining 58 random bits.
func appendUUID(dst []byte, u, v uint64) []byte {
	hi := u>>16<<16 | 0x4000 | u>>4&0x0fff
	lo := 1<<63 | (u&0xf)<<58 | v&(1<<58-1)
	n := len(dst)
	dst = slices.Grow(dst, uuidLen)[:n+uuidLen]
	b := dst[n : n+uuidLen : n+uuidLen]
	// Digits are written last to first, skipping the dashes.
	for i := 17; i >= 0; i-- {
		if i == 8 || i == 13 {
			b[i] = '-'
			continue
		}
		b[i] = hexDigits[hi&0xf]
		hi >>= 4
	}
	b[18] = '-'
	for i := 35; i >= 19; i-- {
		if i == 23 {
			b[i] = '-'
			continue
		}
		b[i] = hexDigits[lo&0xf]
		lo >>= 4
	}
	return dst
}

const hexDigits = "0123456789abcdef"
