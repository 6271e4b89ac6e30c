package consent

import "github.com/custos-dev/custos"

// Reason says why a message may not go to a subject; "" (OK) means it may.
type Reason string

// The reasons, in the order Decide checks them.
const (
	OK         Reason = ""
	Erased     Reason = "erased"     // Art. 17: the subject was erased
	Suppressed Reason = "suppressed" // the subject asked to be left alone entirely
	Restricted Reason = "restricted" // Art. 18: nothing but storage may be done
	Objected   Reason = "objected"   // Art. 21: objection to direct marketing
	Withdrawn  Reason = "withdrawn"  // the latest record withdraws consent
	NoConsent  Reason = "no_consent" // no record: consent was never given
)

// Reasons lists every reason a message is withheld, in Decide's order.
var Reasons = []Reason{Erased, Suppressed, Restricted, Objected, Withdrawn, NoConsent}

// Decide is THE "may we send?" decision for one message of purpose on
// channel to one subject: erased, then suppressed, then restricted, then
// objected (which blocks every message, whatever its purpose: see the
// package documentation), then the consent ledger: the latest record
// deciding (purpose, channel) must be a grant. It is pure and does not
// allocate.
func Decide(st State, flags custos.SubjectFlags, erased bool, purpose, channel string) Reason {
	switch {
	case erased:
		return Erased
	case flags.Suppressed:
		return Suppressed
	case flags.Restricted:
		return Restricted
	case !flags.ObjectedAt.IsZero():
		return Objected
	}
	granted, recorded := st.Lookup(purpose, channel)
	switch {
	case !recorded:
		return NoConsent
	case !granted:
		return Withdrawn
	}
	return OK
}
