package custos

import (
	"context"
	"time"
)

// Session is a signed-in browser — a controller's user in the console, a
// data subject in the privacy center — or a one-time sign-in link not
// used yet, as a store keeps it. Sessions live in the store, not in a
// node's memory, so that any node of a cluster serves a session started
// on another, and a sign-out or revocation on one ends it on all.
//
// A store keeps no secret a browser presents: the session is named by
// the SHA-256 of its token. What only the token's holder may read (the
// identifier a data subject proved, a second factor being set up) is in
// Sealed, sealed by the caller with a key derived from the token, so the
// store cannot open it.
type Session struct {
	// Tenant owns the session (OperatorChain for the operator's).
	Tenant TenantID
	// Kind is SessionConsole, SessionPrivacy or SessionLink.
	Kind string
	// Hash is the SHA-256 of the token the browser presents.
	Hash [32]byte
	// Holder is whose session it is, so that all of one holder's end
	// together (a removed console user's, an erased subject's). It names
	// no data subject in the clear: the privacy center uses a keyed hash.
	Holder string
	// User, How, IP and Agent are what the tenant's administrators see of
	// a console session: the name signed in with, how, from where and
	// with which browser. Empty for other kinds.
	User, How, IP, Agent string
	// Created and Expires bound the session: it is live while the time
	// is not after Expires.
	Created, Expires time.Time
	// Sealed is opaque to the store.
	Sealed []byte
}

// The kinds of Session.
const (
	SessionConsole = "console"
	SessionPrivacy = "privacy"
	SessionLink    = "link"
	// SessionAttempt records are not sessions but attempts to be counted
	// on every node (a failed sign-in, a sign-in link sent): one record
	// each, expiring with the window it counts in, whose Holder names
	// what is limited, so that CountHolderSessions counts the attempts
	// within the window.
	SessionAttempt = "attempt"
)

// Live reports whether s is live at now.
func (s *Session) Live(now time.Time) bool { return !now.After(s.Expires) }

// SessionStore keeps sessions and the state of sign-in that must hold on
// every node: which TOTP step each console user used last. Expiry is
// judged by the now the caller passes; a read never returns an expired
// session, and deletes it. internal/storetest runs its conformance cases.
type SessionStore interface {
	// CreateSession stores a new session; Conflict if one of the same
	// tenant, kind and hash exists.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns a live session, or ErrNotFound if there is none or
	// it expired.
	Session(ctx context.Context, t TenantID, kind string, hash [32]byte, now time.Time) (*Session, error)
	// UpdateSession replaces the Sealed of a live session; ErrNotFound if
	// there is none, so that an update never brings back a session ended
	// meanwhile.
	UpdateSession(ctx context.Context, t TenantID, kind string, hash [32]byte, sealed []byte, now time.Time) error
	// TakeSession deletes a session and returns it if it was live, in
	// one step: of callers racing for it, on any node, one gets it. It
	// answers ErrNotFound otherwise (an expired one is deleted all the
	// same).
	TakeSession(ctx context.Context, t TenantID, kind string, hash [32]byte, now time.Time) (*Session, error)
	// DeleteSession ends a session; ErrNotFound if there was none.
	DeleteSession(ctx context.Context, t TenantID, kind string, hash [32]byte) error
	// DeleteHolderSessions ends every session of one kind and holder, and
	// returns how many there were.
	DeleteHolderSessions(ctx context.Context, t TenantID, kind, holder string) (int, error)
	// CreateSessionBelow stores a new session, as CreateSession, if the
	// tenant has fewer than limit live sessions (at now) of its kind and
	// holder, and reports whether it stored it. Count and store are one
	// step: of callers racing on any node, no more than limit succeed
	// (attempts counted against a limit, SessionAttempt).
	CreateSessionBelow(ctx context.Context, s *Session, limit int, now time.Time) (bool, error)
	// CountHolderSessions returns how many live sessions of one kind and
	// holder the tenant has.
	CountHolderSessions(ctx context.Context, t TenantID, kind, holder string, now time.Time) (int, error)
	// Sessions returns the tenant's live sessions of one kind, ordered by
	// Created, then Hash; it deletes the expired ones it meets.
	Sessions(ctx context.Context, t TenantID, kind string, now time.Time) ([]*Session, error)
	// DeleteExpiredSessions deletes up to limit sessions of any tenant
	// that expired before now, and returns how many it deleted.
	DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error)
	// UseTOTPStep records that a tenant's console user signed in with the
	// TOTP code of step, and reports whether that user had used no code
	// of that step or a later one before: each code works once, on any
	// node. Deleting the tenant deletes the record.
	UseTOTPStep(ctx context.Context, t TenantID, user string, step uint64) (bool, error)
}
