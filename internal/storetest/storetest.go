// Package storetest is the conformance suite for implementations of
// custos.Store, in the manner of testing/fstest: an implementation's own
// test calls Run with a function that opens a fresh, empty store, and Run
// checks, one subtest per behaviour, everything the custos.Store contract
// promises.
//
// The suite tests the contract and nothing else. Durability across a
// restart, the on-disk layout and whether Purge really removes bytes from
// files are for each implementation to test on its own.
//
// Every time the suite stores lies between the years 1900 and 2200 and
// has microsecond precision, which every planned backend represents
// exactly; the contract promises nothing beyond that.
package storetest

import (
	"testing"

	"github.com/custos-dev/custos"
)

// Run runs the conformance suite against the stores open returns, each
// behaviour as a subtest of t. open is called at least once per subtest
// with that subtest's t; it must return a new, empty store and arrange for
// it to be closed (with t.Cleanup). Run is safe under the race detector.
func Run(t *testing.T, open func(t *testing.T) custos.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(*testing.T) custos.Store)
	}{
		{"TenantCreateGet", testTenantCreateGet},
		{"TenantCreateTwice", testTenantCreateTwice},
		{"TenantList", testTenantList},
		{"TenantUpdateMissing", testTenantUpdateMissing},
		{"TenantUpdateRoundTrip", testTenantUpdateRoundTrip},
		{"DeleteTenantMissing", testDeleteTenantMissing},
		{"DeleteTenant", testDeleteTenant},
		{"ApplyRoundTrip", testApplyRoundTrip},
		{"ApplyEmpty", testApplyEmpty},
		{"ApplyVisibility", testApplyVisibility},
		{"ApplyOrderAcrossCalls", testApplyOrderAcrossCalls},
		{"ApplySeveralTenants", testApplySeveralTenants},
		{"ApplyWritesInOrder", testApplyWritesInOrder},
		{"ApplyReplaces", testApplyReplaces},
		{"EventsOrder", testEventsOrder},
		{"EventsCursor", testEventsCursor},
		{"EventsStop", testEventsStop},
		{"EventsError", testEventsError},
		{"EventsNone", testEventsNone},
		{"EventSpan", testEventSpan},
		{"DaysEmptied", testDaysEmptied},
		{"EachProfile", testEachProfile},
		{"NotFound", testNotFound},
		{"ReadMany", testReadMany},
		{"EachSeen", testEachSeen},
		{"DeleteSubjects", testDeleteSubjects},
		{"DeleteBeforePut", testDeleteBeforePut},
		{"DeleteEvents", testDeleteEvents},
		{"ExpireBefore", testExpireBefore},
		{"Unlinks", testUnlinks},
		{"Unsee", testUnsee},
		{"TenantIsolation", testTenantIsolation},
		{"Purge", testPurge},
		{"Concurrency", testConcurrency},
		{"ReturnedCopies", testReturnedCopies},
		{"InputNotRetained", testInputNotRetained},
		{"Requests", testRequests},
		{"Flags", testFlags},
		{"Consents", testConsents},
		{"AuditPages", testAuditPages},
		{"AuditRoundTrip", testAuditRoundTrip},
		{"AuditConflict", testAuditConflict},
		{"AuditLast", testAuditLast},
		{"AuditChainsIndependent", testAuditChainsIndependent},
		{"AuditOutlivesTenant", testAuditOutlivesTenant},
		{"OutboxDue", testOutboxDue},
		{"OutboxReschedule", testOutboxReschedule},
		{"OutboxFinal", testOutboxFinal},
		{"OutboxDeliveries", testOutboxDeliveries},
		{"OutboxReplace", testOutboxReplace},
		{"Recipients", testRecipients},
		{"RecipientSecret", testRecipientSecret},
		{"RecipientIsolation", testRecipientIsolation},
		{"Incidents", testIncidents},
		{"IncidentNotifications", testIncidentNotifications},
		{"TenantRecords", testTenantRecords},
		{"Campaigns", testCampaigns},
		{"Sends", testSends},
		{"SendCap", testSendCap},
		{"EachAudience", testEachAudience},
		{"ApplySends", testApplySends},
		{"MergedInto", testMergedInto},
		{"Tombstones", testTombstones},
		{"Sessions", testSessions},
		{"SessionUpdate", testSessionUpdate},
		{"SessionTake", testSessionTake},
		{"SessionBelow", testSessionBelow},
		{"SessionList", testSessionList},
		{"SessionSweep", testSessionSweep},
		{"TOTPStep", testTOTPStep},
		{"DeleteTenantSessions", testDeleteTenantSessions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}
