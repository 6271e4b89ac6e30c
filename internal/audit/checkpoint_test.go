package audit_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

func TestCheckpointSignature(t *testing.T) {
	st, _ := openStore(t, t.TempDir())
	l := audit.New(st, newClock().Now)
	tn := custos.NewTenantID()
	es := record(t, l, tn, 5)
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.Checkpoint(t.Context(), tn, key)
	if err != nil {
		t.Fatalf("Checkpoint = %v", err)
	}
	if c.Tenant != tn || c.Seq != 5 || c.Hash != es[4].Hash || c.Time.Location() != time.UTC {
		t.Fatalf("Checkpoint = %+v, want tenant %s, seq 5, hash %s, a UTC time", c, tn, es[4].Hash)
	}
	if err := audit.VerifyCheckpoint(c, pub); err != nil {
		t.Fatalf("VerifyCheckpoint = %v, want nil", err)
	}
	// As a verifier receives it: JSON.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back audit.Checkpoint
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyCheckpoint(back, pub); err != nil {
		t.Fatalf("VerifyCheckpoint after a JSON round trip of %s = %v, want nil", b, err)
	}

	sig, _ := base64.StdEncoding.DecodeString(c.Signature)
	sig[0] ^= 1
	tests := []struct {
		name   string
		change func(*audit.Checkpoint)
		pub    ed25519.PublicKey
	}{
		{"tenant", func(c *audit.Checkpoint) { c.Tenant = custos.NewTenantID() }, pub},
		{"seq", func(c *audit.Checkpoint) { c.Seq-- }, pub},
		{"hash", func(c *audit.Checkpoint) { c.Hash = es[3].Hash }, pub},
		{"time", func(c *audit.Checkpoint) { c.Time = c.Time.Add(time.Nanosecond) }, pub},
		{"signature", func(c *audit.Checkpoint) { c.Signature = base64.StdEncoding.EncodeToString(sig) }, pub},
		{"signature not base64", func(c *audit.Checkpoint) { c.Signature = "not base64!" }, pub},
		{"signature empty", func(c *audit.Checkpoint) { c.Signature = "" }, pub},
		{"wrong key", func(c *audit.Checkpoint) {}, otherPub},
		{"short key", func(c *audit.Checkpoint) {}, pub[:31]},
	}
	for _, tc := range tests {
		changed := c
		tc.change(&changed)
		err := audit.VerifyCheckpoint(changed, tc.pub)
		if got := custos.ErrorCode(err); err == nil || got != custos.Invalid {
			t.Errorf("VerifyCheckpoint with %s changed = %v (code %s), want code %s", tc.name, err, got, custos.Invalid)
		}
		// VerifyStoreAgainst refuses such a checkpoint outright.
		if _, _, brk, err := audit.VerifyStoreAgainst(t.Context(), st, changed.Tenant, changed, tc.pub); err == nil {
			t.Errorf("VerifyStoreAgainst with %s changed = break %+v, nil error; want an error", tc.name, brk)
		}
	}

	if _, _, _, err := audit.VerifyStoreAgainst(t.Context(), st, custos.NewTenantID(), c, pub); custos.ErrorCode(err) != custos.Invalid {
		t.Errorf("VerifyStoreAgainst on another chain = %v, want code %s", err, custos.Invalid)
	}
	if _, err := l.Checkpoint(t.Context(), tn, key[:32]); err == nil {
		t.Error("Checkpoint with a 32-byte key = nil error, want an error")
	}
}

// TestCheckpointOfGrowingChain: a checkpoint stays valid proof as the
// chain grows past it, and an empty chain can be checkpointed too.
func TestCheckpointOfGrowingChain(t *testing.T) {
	st, _ := openStore(t, t.TempDir())
	l := audit.New(st, newClock().Now)
	tn := custos.NewTenantID()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var cps []audit.Checkpoint
	for range 3 {
		c, err := l.Checkpoint(t.Context(), tn, key)
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, c)
		record(t, l, tn, 3)
	}
	if cps[0].Seq != 0 || cps[0].Hash != audit.Genesis {
		t.Errorf("checkpoint of an empty chain = seq %d hash %s, want 0 and Genesis", cps[0].Seq, cps[0].Hash)
	}
	last, _, err := st.LastAudit(t.Context(), tn)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cps {
		checked, head, brk, err := audit.VerifyStoreAgainst(t.Context(), st, tn, c, pub)
		if err != nil || brk != nil || checked != 9 || head != last.Hash {
			t.Errorf("VerifyStoreAgainst(checkpoint at %d) = %d, %s, %+v, %v; want 9, %s, no break, nil", c.Seq, checked, head, brk, err, last.Hash)
		}
	}
}

// TestCheckpointRefusesEditedHead: Checkpoint must not sign a head that
// was changed in place.
func TestCheckpointRefusesEditedHead(t *testing.T) {
	dir := t.TempDir()
	st, closeStore := openStore(t, dir)
	tn := custos.NewTenantID()
	record(t, audit.New(st, newClock().Now), tn, 3)
	closeStore()
	tamper(t, dir, func(db *rawDB) { db.edit(tn, 3, func(e *custos.AuditEntry) { e.Actor = "someone else" }) })

	st, _ = openStore(t, dir)
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := audit.New(st, newClock().Now).Checkpoint(t.Context(), tn, key)
	if custos.ErrorCode(err) != custos.Internal {
		t.Fatalf("Checkpoint of an edited head = %+v, %v; want an Internal error", c, err)
	}
}
