package postgres

import (
	"context"
	"encoding/hex"
	"strings"
	"time"

	"github.com/custos-dev/custos"
)

var _ custos.ChangeFeed = (*Store)(nil)

// changesChannel is the LISTEN/NOTIFY channel of the data database. A
// payload is "topic:tenant id in hex"; PostgreSQL delivers it at commit,
// to every session listening, the notifying one included.
const changesChannel = "custos_changes"

// sqlNotify is appended to a write whose change other nodes cache; $1 is
// the tenant id. It takes part in the write's transaction, so the
// notification goes out if and only if the write commits.
func sqlNotify(topic string) string {
	return "SELECT pg_notify('" + changesChannel + "', '" + topic + ":' || encode($1::bytea, 'hex'))"
}

// ListenChanges calls fn for every change committed to the data database
// by any node (see custos.ChangeFeed). It holds one connection of its own,
// outside the pool's accounting; when it is lost, fn gets ChangeAll and
// ListenChanges connects again, every second until it succeeds.
func (s *Store) ListenChanges(ctx context.Context, fn func(topic string, t custos.TenantID)) error {
	for ctx.Err() == nil {
		err := s.listen(ctx, fn)
		if ctx.Err() != nil {
			break
		}
		_ = err // the connection is gone: what it missed is reloaded
		fn(custos.ChangeAll, custos.TenantID{})
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// listen listens on one connection until it fails or ctx ends.
func (s *Store) listen(ctx context.Context, fn func(string, custos.TenantID)) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection is the listener's alone from now on: a connection
	// interrupted in WaitForNotification must never go back to the pool.
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+changesChannel); err != nil {
		return err
	}
	// Whatever changed before LISTEN took effect was not notified to us.
	fn(custos.ChangeAll, custos.TenantID{})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		topic, id, ok := parseChange(n.Payload)
		if !ok {
			fn(custos.ChangeAll, custos.TenantID{})
			continue
		}
		fn(topic, id)
	}
}

// parseChange splits a payload "topic:hex tenant id".
func parseChange(payload string) (string, custos.TenantID, bool) {
	topic, hexID, ok := strings.Cut(payload, ":")
	if !ok {
		return "", custos.TenantID{}, false
	}
	b, err := hex.DecodeString(hexID)
	var id custos.TenantID
	if err != nil || len(b) != len(id) {
		return "", id, false
	}
	copy(id[:], b)
	return topic, id, true
}
