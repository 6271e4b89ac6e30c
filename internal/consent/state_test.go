package consent

import (
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rec is a record at t0 plus sec seconds, sequence seq.
func rec(purpose, channel string, granted bool, sec int, seq uint64) custos.ConsentRecord {
	return custos.ConsentRecord{Purpose: purpose, Channel: channel, Granted: granted, Time: t0.Add(time.Duration(sec) * time.Second), Seq: seq, Source: custos.SourceAPI}
}

func TestStateLookup(t *testing.T) {
	type q struct {
		purpose, channel  string
		granted, recorded bool
	}
	tests := []struct {
		name    string
		history []custos.ConsentRecord
		want    []q
	}{
		{"no record means no consent", nil, []q{
			{"marketing", "email", false, false},
			{"marketing", "", false, false},
		}},
		{"grant on one channel only", []custos.ConsentRecord{rec("marketing", "email", true, 0, 1)}, []q{
			{"marketing", "email", true, true},
			{"marketing", "push", false, false},
			{"marketing", "", false, false},
			{"analytics", "email", false, false},
		}},
		{"every channel covers each channel", []custos.ConsentRecord{rec("marketing", "", true, 0, 1)}, []q{
			{"marketing", "email", true, true},
			{"marketing", "webhook", true, true},
			{"marketing", "", true, true},
			{"analytics", "email", false, false},
		}},
		{"later channel withdrawal beats earlier all-channel grant", []custos.ConsentRecord{
			rec("marketing", "", true, 0, 1), rec("marketing", "email", false, 1, 2),
		}, []q{
			{"marketing", "email", false, true},
			{"marketing", "push", true, true},
			{"marketing", "", true, true},
		}},
		{"later all-channel withdrawal beats earlier channel grant", []custos.ConsentRecord{
			rec("marketing", "email", true, 0, 1), rec("marketing", "", false, 1, 2),
		}, []q{
			{"marketing", "email", false, true},
			{"marketing", "sms", false, true},
		}},
		{"later channel grant after all-channel withdrawal grants that channel only", []custos.ConsentRecord{
			rec("marketing", "", false, 0, 1), rec("marketing", "email", true, 1, 2),
		}, []q{
			{"marketing", "email", true, true},
			{"marketing", "push", false, true},
		}},
		{"latest per pair wins", []custos.ConsentRecord{
			rec("marketing", "email", true, 0, 1), rec("marketing", "email", false, 1, 2), rec("marketing", "email", true, 2, 3),
		}, []q{{"marketing", "email", true, true}}},
		{"order is by time, not arrival", []custos.ConsentRecord{
			rec("marketing", "email", false, 5, 9), rec("marketing", "email", true, 1, 10),
		}, []q{{"marketing", "email", false, true}}},
		{"same time: sequence decides", []custos.ConsentRecord{
			rec("marketing", "", true, 0, 2), rec("marketing", "email", false, 0, 1),
		}, []q{{"marketing", "email", true, true}}},
		{"purposes are apart", []custos.ConsentRecord{
			rec("analytics", "", true, 0, 1), rec("marketing", "", false, 1, 2),
		}, []q{
			{"analytics", "push", true, true},
			{"marketing", "push", false, true},
			{"personalization", "push", false, false},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := NewState(tc.history)
			for _, w := range tc.want {
				g, r := st.Lookup(w.purpose, w.channel)
				if g != w.granted || r != w.recorded {
					t.Errorf("Lookup(%q, %q) = %v, %v; want %v, %v", w.purpose, w.channel, g, r, w.granted, w.recorded)
				}
				d, ok := st.Decision(w.purpose, w.channel)
				if ok != w.recorded || (ok && d.Granted != w.granted) {
					t.Errorf("Decision(%q, %q) = %+v, %v; want granted %v, %v", w.purpose, w.channel, d, ok, w.granted, w.recorded)
				}
			}
		})
	}
}

func TestStateAddDoesNotChangeCopies(t *testing.T) {
	a := NewState([]custos.ConsentRecord{rec("marketing", "email", true, 0, 1)})
	b := a
	b.Add(rec("marketing", "email", false, 1, 2))
	if g, _ := a.Lookup("marketing", "email"); !g {
		t.Error("adding to a copy changed the original")
	}
	if g, _ := b.Lookup("marketing", "email"); g {
		t.Error("the copy did not take the later withdrawal")
	}
	if n := len(b.Records()); n != 1 {
		t.Errorf("Records() = %d records, want 1 per purpose and channel", n)
	}
}

func TestDecide(t *testing.T) {
	granted := NewState([]custos.ConsentRecord{rec("marketing", "email", true, 0, 1)})
	withdrawn := NewState([]custos.ConsentRecord{rec("marketing", "email", true, 0, 1), rec("marketing", "", false, 1, 2)})
	objected := custos.SubjectFlags{ObjectedAt: t0}
	tests := []struct {
		name             string
		st               State
		flags            custos.SubjectFlags
		erased           bool
		purpose, channel string
		want             Reason
	}{
		{"granted", granted, custos.SubjectFlags{}, false, "marketing", "email", OK},
		{"no record", State{}, custos.SubjectFlags{}, false, "marketing", "email", NoConsent},
		{"grant on another channel", granted, custos.SubjectFlags{}, false, "marketing", "push", NoConsent},
		{"grant for another purpose", granted, custos.SubjectFlags{}, false, "personalization", "email", NoConsent},
		{"withdrawn", withdrawn, custos.SubjectFlags{}, false, "marketing", "email", Withdrawn},
		{"objected beats a grant", granted, objected, false, "marketing", "email", Objected},
		{"objection covers every purpose", NewState([]custos.ConsentRecord{rec("personalization", "", true, 0, 1)}), objected, false, "personalization", "push", Objected},
		{"restricted beats objected", granted, custos.SubjectFlags{Restricted: true, ObjectedAt: t0}, false, "marketing", "email", Restricted},
		{"suppressed beats restricted", granted, custos.SubjectFlags{Suppressed: true, Restricted: true}, false, "marketing", "email", Suppressed},
		{"erased beats everything", granted, custos.SubjectFlags{Suppressed: true}, true, "marketing", "email", Erased},
		{"erased without flags", State{}, custos.SubjectFlags{}, true, "marketing", "email", Erased},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.st, tc.flags, tc.erased, tc.purpose, tc.channel); got != tc.want {
				t.Errorf("Decide(%s, %q, %q) = %q, want %q", tc.name, tc.purpose, tc.channel, got, tc.want)
			}
		})
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	st := NewState([]custos.ConsentRecord{rec("analytics", "", true, 0, 1), rec("marketing", "", true, 0, 2), rec("marketing", "sms", false, 1, 3)})
	if n := testing.AllocsPerRun(100, func() { Decide(st, custos.SubjectFlags{}, false, "marketing", "email") }); n != 0 {
		t.Errorf("Decide allocates %v times per call, want 0", n)
	}
}

func TestTruncateIP(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.123":           "192.0.2.0",
		"2001:db8:1234:5678::1": "2001:db8:1234::",
		"::ffff:198.51.100.7":   "198.51.100.0",
		"fe80::1%eth0":          "fe80::",
		"not an address":        "",
		"192.0.2.1/24":          "",
		"":                      "",
	} {
		if got := TruncateIP(in); got != want {
			t.Errorf("TruncateIP(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	st := &custos.Settings{}
	for _, tc := range []struct {
		r    custos.ConsentRecord
		want string // a word the error must name; "" for none
	}{
		{custos.ConsentRecord{Purpose: "marketing", Channel: "email", Source: custos.SourceAPI}, ""},
		{custos.ConsentRecord{Purpose: "marketing", Source: custos.SourceImport}, ""},
		{custos.ConsentRecord{Purpose: "ads", Source: custos.SourceAPI}, `"ads"`},
		{custos.ConsentRecord{Purpose: "marketing", Channel: "fax", Source: custos.SourceAPI}, `"fax"`},
		{custos.ConsentRecord{Purpose: "marketing", Source: "web"}, `"web"`},
		{custos.ConsentRecord{Purpose: "marketing", Source: custos.SourceAPI, Proof: []byte("{")}, "proof"},
		{custos.ConsentRecord{Source: custos.SourceAPI}, "purpose"},
	} {
		err := Check(st, &tc.r)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Check(%+v) = %v, want nil", tc.r, err)
		case tc.want != "" && (err == nil || custos.ErrorCode(err) != custos.Invalid || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Check(%+v) = %v, want an Invalid error naming %s", tc.r, err, tc.want)
		}
	}
}
