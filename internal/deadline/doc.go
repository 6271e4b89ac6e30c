// Package deadline computes the legal due dates of data-subject requests
// under GDPR Art. 12(3): an answer is due one calendar month after the
// request is received, and the controller may extend that by at most two
// further months, with a reason, if it says so within the first month.
//
// Months are calendar months, not 30 days: a request received on 15 March
// is due on 15 April. When the target month is too short, the due date is
// its last day: 31 January gives 28 February (29 in a leap year), 31 March
// gives 30 April. The due date keeps the clock time and the location of the
// time received, so a request received at 10:00 Berlin time in winter is
// due at 10:00 Berlin summer time, 31 days less one hour later.
//
// The package does no I/O and reads no clock: callers pass "now", so the
// rules are tested to the nanosecond.
package deadline
