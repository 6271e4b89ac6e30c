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

// sqlNotifySubjects notifies the deletion of the subjects $2 of tenant $1.
const sqlNotifySubjects = "SELECT pg_notify('" + changesChannel + "', 'subject:' || encode($1::bytea, 'hex') || ':' || encode(s, 'hex')) FROM unnest($2::bytea[]) AS s"

// ListenChanges calls fn for every change committed to the data database
// by any node (see custos.ChangeFeed). It holds one connection of its own,
// outside the pool's accounting; when it is lost, fn gets ChangeAll and
// ListenChanges connects again, every second until it succeeds.
func (s *Store) ListenChanges(ctx context.Context, fn func(custos.Change)) error {
	for ctx.Err() == nil {
		err := s.listen(ctx, fn)
		if ctx.Err() != nil {
			break
		}
		_ = err // the connection is gone: what it missed is reloaded
		fn(custos.Change{Topic: custos.ChangeAll})
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// listen listens on one connection until it fails or ctx ends.
func (s *Store) listen(ctx context.Context, fn func(custos.Change)) error {
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
	fn(custos.Change{Topic: custos.ChangeAll})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		c, ok := parseChange(n.Payload)
		if !ok {
			c = custos.Change{Topic: custos.ChangeAll}
		}
		fn(c)
	}
}

// parseChange reads a payload "topic:tenant id[:subject id]", ids in hex.
func parseChange(payload string) (custos.Change, bool) {
	parts := strings.Split(payload, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return custos.Change{}, false
	}
	c := custos.Change{Topic: parts[0]}
	if !unhex16(parts[1], c.Tenant[:]) {
		return c, false
	}
	if len(parts) == 3 && !unhex16(parts[2], c.Subject[:]) {
		return c, false
	}
	return c, true
}

func unhex16(s string, dst []byte) bool {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return false
	}
	copy(dst, b)
	return true
}
