package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/custos-dev/custos"
)

// Checkpoint is a signed statement of a chain's head: "at Time, the chain
// of Tenant had Seq entries and entry Seq had hash Hash". Kept outside the
// store, it lets VerifyAgainst detect entries removed from the chain's end.
// An empty chain's checkpoint has Seq 0 and Hash Genesis.
//
// Signature is the standard base64 Ed25519 signature over this encoding
// of the other fields:
//
//	field("custos audit checkpoint v1")
//	tenant as its 16 bytes
//	seq as 8 bytes big-endian
//	field(hash as its hex string)
//	field(time in RFC 3339 with nanoseconds, UTC: time.RFC3339Nano)
//
// where field(b) is len(b) as 8 bytes big-endian followed by b.
type Checkpoint struct {
	Tenant    custos.TenantID `json:"tenant"`
	Seq       uint64          `json:"seq"`
	Hash      string          `json:"hash"`
	Time      time.Time       `json:"time"`
	Signature string          `json:"signature"`
}

const checkpointDomain = "custos audit checkpoint v1"

// signed returns the bytes the signature covers.
func (c Checkpoint) signed() []byte {
	ts := c.Time.UTC().Format(time.RFC3339Nano)
	b := make([]byte, 0, 8*3+len(checkpointDomain)+16+len(c.Hash)+len(ts))
	b = appendField(b, checkpointDomain)
	b = append(b, c.Tenant[:]...)
	b = binary.BigEndian.AppendUint64(b, c.Seq)
	b = appendField(b, c.Hash)
	return appendField(b, ts)
}

// Checkpoint signs the current head of tenant t's chain with key.
//
// It checks that the head entry matches its own hash, so that an entry
// edited in place is never signed, but it does not walk the whole chain:
// run VerifyStore (or VerifyStoreAgainst the previous checkpoint) before
// relying on a checkpoint as proof of the entries below the head.
func (l *Log) Checkpoint(ctx context.Context, t custos.TenantID, key ed25519.PrivateKey) (Checkpoint, error) {
	if len(key) != ed25519.PrivateKeySize {
		return Checkpoint{}, fmt.Errorf("checkpoint chain %s: signing key has %d bytes, want %d", t, len(key), ed25519.PrivateKeySize)
	}
	last, ok, err := l.store.LastAudit(ctx, t)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint chain %s: read head: %w", t, err)
	}
	c := Checkpoint{Tenant: t, Hash: Genesis, Time: l.now().UTC()}
	if ok {
		if Hash(last) != last.Hash {
			return Checkpoint{}, custos.Errorf(custos.Internal,
				"audit chain %s is damaged: entry %d, its head, does not match its hash; not signing it", t, last.Seq)
		}
		c.Seq, c.Hash = last.Seq, last.Hash
	}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.signed()))
	return c, nil
}

// VerifyCheckpoint checks c's signature against pub. It returns an Invalid
// error if any field was changed or another key signed it.
func VerifyCheckpoint(c Checkpoint, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return custos.Errorf(custos.Invalid, "public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return custos.Errorf(custos.Invalid, "checkpoint of chain %s at entry %d: the signature is not base64 of %d bytes", c.Tenant, c.Seq, ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, c.signed(), sig) {
		return custos.Errorf(custos.Invalid, "checkpoint of chain %s at entry %d: the signature does not verify: the checkpoint was changed or signed by another key", c.Tenant, c.Seq)
	}
	return nil
}
