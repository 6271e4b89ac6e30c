package incident_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/incident"
	"github.com/custos-dev/custos/internal/mail/mailtest"
	"github.com/custos-dev/custos/internal/testenv"
	"github.com/custos-dev/custos/internal/webhook"
)

// TestNotifiesEachTenantWithRetries opens an incident over three tenants:
// two with a webhook receiver (answering 503 first) and an e-mail address
// (the SMTP server refusing the first message with a transient error),
// one with no contact at all. Each is told at once, retried until
// delivered, every attempt is kept, and a fourth tenant out of scope
// sees nothing.
func TestNotifiesEachTenantWithRetries(t *testing.T) {
	smtp := mailtest.Start(t)
	smtp.FailNext(1)
	e := newEnv(t, nil, mailConfig(smtp))
	recvA, recvB := newReceiver(t, 1), newReceiver(t, 1)
	a, secretA := e.tenant(t, "a", `{"security_contact_url": {"url": "`+recvA.URL+`/hook", "region": "eu"}, "security_contact_email": "sec-a@tenant-a.example"}`)
	b, secretB := e.tenant(t, "b", `{"security_contact_url": {"url": "`+recvB.URL+`/hook", "region": "eu"}, "security_contact_email": "sec-b@tenant-b.example"}`)
	c, _ := e.tenant(t, "c", "")
	out, _ := e.tenant(t, "out", `{"security_contact_email": "sec-out@tenant-out.example"}`)
	e.track(t, a.ID, "ann", time.Now().Add(-time.Hour))
	e.run()

	ctx := context.Background()
	inc, err := e.inc.Open(ctx, openInput(time.Now().Add(-30*time.Minute), a.ID, b.ID, c.ID))
	if err != nil {
		t.Fatal(err)
	}

	// Webhooks: signed with each tenant's secret, after a 503 each.
	for _, x := range []struct {
		name   string
		recv   *receiver
		secret string
		tenant custos.TenantID
	}{{"A", recvA, secretA, a.ID}, {"B", recvB, secretB, b.ID}} {
		got := x.recv.wait(t, 1)[0]
		if err := webhook.Verify([]byte(x.secret), got.body, got.header.Get(webhook.HeaderSignature), time.Now(), 0); err != nil {
			t.Errorf("tenant %s webhook signature: %v", x.name, err)
		}
		if err := webhook.Verify([]byte("another secret"), got.body, got.header.Get(webhook.HeaderSignature), time.Now(), 0); err == nil {
			t.Errorf("tenant %s webhook verifies with a wrong secret", x.name)
		}
		var p incident.Payload
		if err := json.Unmarshal(got.body, &p); err != nil {
			t.Fatalf("tenant %s webhook body %s: %v", x.name, got.body, err)
		}
		if p.Type != custos.IncidentMessageOpened || p.TenantID != x.tenant || p.Incident.ID != inc.ID || p.Incident.Nature != inc.Nature ||
			!p.Deadline.DeadlineAt.Equal(p.NotifiedAt.Add(72*time.Hour)) {
			t.Errorf("tenant %s webhook body = %s; want incident.opened of %s for this tenant with a 72-hour deadline", x.name, got.body, inc.ID)
		}
		if strings.Contains(string(got.body), c.ID.String()) || strings.Contains(string(got.body), out.ID.String()) {
			t.Errorf("tenant %s webhook names other tenants: %s", x.name, got.body)
		}
	}
	// E-mails: both arrive, one after a transient refusal.
	msgs := smtp.Wait(2, 10*time.Second)
	if len(msgs) != 2 {
		t.Fatalf("SMTP server got %d messages, want 2", len(msgs))
	}
	var to []string
	for _, m := range msgs {
		to = append(to, m.To...)
		if s := m.Header().Get("Subject"); !strings.Contains(s, inc.ID) {
			t.Errorf("e-mail subject %q does not name the incident", s)
		}
	}
	slices.Sort(to)
	if want := []string{"sec-a@tenant-a.example", "sec-b@tenant-b.example"}; !slices.Equal(to, want) {
		t.Errorf("e-mails went to %v, want %v", to, want)
	}

	// Every attempt is recorded, per channel.
	var mailAttempts int
	eventually(t, "all channels delivered", func() bool {
		mailAttempts = 0
		_, ns, err := e.inc.Incident(ctx, inc.ID)
		if err != nil || len(ns) != 3 {
			return false
		}
		for _, n := range ns {
			if n.Tenant == c.ID {
				continue
			}
			wh, em := n.Messages[0].Channel(custos.ChannelWebhook), n.Messages[0].Channel(custos.ChannelEmail)
			if wh.Status != custos.DeliveryDelivered || em.Status != custos.DeliveryDelivered {
				return false
			}
			mailAttempts += len(em.Attempts)
		}
		return true
	})
	_, ns, _ := e.inc.Incident(ctx, inc.ID)
	for _, n := range ns {
		m := n.Messages[0]
		switch n.Tenant {
		case a.ID, b.ID:
			wh := m.Channel(custos.ChannelWebhook)
			if len(wh.Attempts) != 2 || wh.Attempts[0].OK || wh.Attempts[0].Status != 503 || !wh.Attempts[1].OK || wh.Attempts[1].Status != 200 {
				t.Errorf("tenant %s webhook attempts = %+v; want a 503 then a 200", n.Tenant, wh.Attempts)
			}
			if len(incident.Warnings(n)) != 0 {
				t.Errorf("tenant %s warnings = %v, want none", n.Tenant, incident.Warnings(n))
			}
		case c.ID:
			if w := incident.Warnings(n); len(w) != 1 || !strings.Contains(w[0], "no contact configured") {
				t.Errorf("tenant without contact: warnings = %v, want \"no contact configured\"", w)
			}
			if app := m.Channel(custos.ChannelInApp); app.Status != custos.DeliveryDelivered {
				t.Errorf("tenant without contact: in-app status %q, want delivered", app.Status)
			}
		}
		if n.Subjects != map[bool]int64{true: 1, false: 0}[n.Tenant == a.ID] {
			t.Errorf("tenant %s: approx_subjects = %d", n.Tenant, n.Subjects)
		}
	}
	if mailAttempts != 3 {
		t.Errorf("e-mail attempts in all = %d, want 3 (one transient failure, two deliveries)", mailAttempts)
	}

	// The tenant out of scope knows nothing of it.
	if _, _, err := e.inc.TenantIncident(ctx, out.ID, inc.ID); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("tenant out of scope: err = %v, want not found", err)
	}
	if incs, _, err := e.inc.TenantIncidents(ctx, out.ID); err != nil || len(incs) != 0 {
		t.Errorf("tenant out of scope lists %d incidents (%v), want none", len(incs), err)
	}

	// Audit: the operator's chain and each tenant's, with every attempt.
	if got := e.auditActions(t, custos.OperatorChain); !slices.Contains(got, "incident.open") {
		t.Errorf("operator chain = %v, want incident.open", got)
	}
	eventually(t, "delivery audit entries", func() bool {
		got := e.auditActions(t, a.ID)
		n := 0
		for _, x := range got {
			if x == "incident.delivery" {
				n++
			}
		}
		return slices.Contains(got, "incident.notify") && n >= 3 // webhook 503, webhook 200, e-mail
	})

	// An update and the closing reach both channels the same way.
	if _, err := e.inc.Update(ctx, inc.ID, incident.UpdateInput{Message: "Forensics confirm no download", Measures: "Keys rotated"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.inc.Close(ctx, inc.ID, "Closed after review"); err != nil {
		t.Fatal(err)
	}
	got := recvA.wait(t, 3)
	kinds := []string{got[1].header.Get(webhook.HeaderKind), got[2].header.Get(webhook.HeaderKind)}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{custos.IncidentMessageClosed, custos.IncidentMessageUpdated}) {
		t.Errorf("tenant A later webhooks = %v, want an update and the closing", kinds)
	}
	if msgs := smtp.Wait(6, 10*time.Second); len(msgs) != 6 {
		t.Errorf("SMTP server got %d messages, want 6 (opening, update, closing for two tenants)", len(msgs))
	}
	if _, err := e.inc.Update(ctx, inc.ID, incident.UpdateInput{Message: "late"}); custos.ErrorCode(err) != custos.Conflict {
		t.Errorf("update of a closed incident: err = %v, want conflict", err)
	}
}

// TestDeadline checks the 72-hour clock at its exact boundaries, counted
// from the notification, with an injected clock.
func TestDeadline(t *testing.T) {
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c := testenv.NewClock(start)
	e := newEnv(t, c, nil)
	a, _ := e.tenant(t, "a", "")
	ctx := context.Background()
	c.Add(10 * time.Minute) // notified some time after detection
	inc, err := e.inc.Open(ctx, openInput(start, a.ID))
	if err != nil {
		t.Fatal(err)
	}
	_, n, err := e.inc.TenantIncident(ctx, a.ID, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	notified := start.Add(10 * time.Minute)
	if !n.NotifiedAt.Equal(notified) {
		t.Fatalf("notified_at = %v, want %v (the clock at opening)", n.NotifiedAt, notified)
	}
	for _, tc := range []struct {
		after   time.Duration
		overdue bool
		hours   float64
	}{
		{0, false, 72},
		{71*time.Hour + 59*time.Minute, false, 0.01},
		{72 * time.Hour, false, 0},
		{72*time.Hour + time.Minute, true, 0},
		{100 * time.Hour, true, 0},
	} {
		d := incident.DeadlineOf(n, notified.Add(tc.after))
		if d.Overdue != tc.overdue || d.HoursRemaining != tc.hours || !d.DeadlineAt.Equal(notified.Add(72*time.Hour)) {
			t.Errorf("%v after notification: deadline %+v; want overdue %t, %.2f hours left, due %v", tc.after, d, tc.overdue, tc.hours, notified.Add(72*time.Hour))
		}
	}
	// Acknowledging stamps the clock's time once.
	c.Add(time.Hour)
	if n, err := e.inc.Acknowledge(ctx, a.ID, inc.ID, audit.ActorTenant); err != nil || !n.AcknowledgedAt.Equal(notified.Add(time.Hour)) {
		t.Errorf("acknowledge = %v, %v; want acknowledged_at %v", n, err, notified.Add(time.Hour))
	}
	c.Add(time.Hour)
	if n, err := e.inc.Acknowledge(ctx, a.ID, inc.ID, audit.ActorTenant); err != nil || !n.AcknowledgedAt.Equal(notified.Add(time.Hour)) {
		t.Errorf("second acknowledge moved acknowledged_at to %v (%v)", n.AcknowledgedAt, err)
	}
}

// TestNoticeWording checks the Art. 34 draft: the encryption exception is
// said to apply only when the data was encrypted and the keys were safe.
func TestNoticeWording(t *testing.T) {
	base := &custos.Incident{ID: "inc_1", DetectedAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), Nature: "a laptop was stolen",
		DataCategories: []string{"contact.email", "profile.traits.plan"}, Consequences: "unwanted e-mail", Measures: "the laptop was wiped remotely"}
	settings := &custos.Settings{ControllerName: "Acme GmbH", DPOContact: "dpo@acme.example"}
	for _, tc := range []struct {
		name                string
		encrypted, keysSafe bool
		exception           bool
		want, notWant       string
	}{
		{"encrypted, keys safe", true, true, true, "exception likely applies", "does not apply"},
		{"encrypted, keys compromised", true, false, false, "keys may have been compromised", "likely applies"},
		{"not encrypted", false, false, false, "was not encrypted", "likely applies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := *base
			in.Encrypted, in.KeysSafe = tc.encrypted, tc.keysSafe
			n := incident.Draft(&in, settings)
			if n.ExceptionLikely != tc.exception {
				t.Errorf("exception likely = %t, want %t", n.ExceptionLikely, tc.exception)
			}
			if !strings.Contains(n.Assessment, "Art. 34(3)(a)") || !strings.Contains(n.Assessment, tc.want) || strings.Contains(n.Assessment, tc.notWant) {
				t.Errorf("assessment = %q; want it to name Art. 34(3)(a) and say %q, not %q", n.Assessment, tc.want, tc.notWant)
			}
			for _, s := range []string{"Acme GmbH", "dpo@acme.example", "A laptop was stolen.", "e-mail address", `"plan"`,
				"Unwanted e-mail.", "The laptop was wiped remotely.", "1 March 2026", "complaint"} {
				if !strings.Contains(n.Text, s) {
					t.Errorf("notice text lacks %q:\n%s", s, n.Text)
				}
			}
			if said := strings.Contains(n.Text, "stored encrypted"); said != tc.exception {
				t.Errorf("notice tells people the data was encrypted with safe keys: %t, want %t", said, tc.exception)
			}
		})
	}
}

// TestScope checks scope by tenant list and by event time window: the
// counts, and the affected subjects listed page by page.
func TestScope(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	c := testenv.NewClock(now)
	e := newEnv(t, c, nil)
	a, _ := e.tenant(t, "a", "")
	b, _ := e.tenant(t, "b", "")
	other, _ := e.tenant(t, "other", "")
	jan := func(d int) time.Time { return time.Date(2026, 1, d, 10, 0, 0, 0, time.UTC) }
	mar := func(d int) time.Time { return time.Date(2026, 3, d, 10, 0, 0, 0, time.UTC) }
	e.track(t, a.ID, "u1", jan(5), jan(6), jan(7)) // 3 in January
	e.track(t, a.ID, "u2", mar(1), mar(2))         // 2 in March
	e.track(t, a.ID, "u3", jan(31), mar(3))        // 1 in January, 1 in March
	e.track(t, a.ID, "u4", time.Date(2025, 12, 20, 0, 0, 0, 0, time.UTC), mar(4))
	e.track(t, b.ID, "v1", jan(10))
	e.track(t, other.ID, "w1", jan(10))
	ctx := context.Background()

	in := openInput(now.Add(-time.Hour), a.ID, b.ID)
	in.Scope.EventsFrom, in.Scope.EventsTo = jan(1), time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC)
	inc, err := e.inc.Open(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	_, ns, err := e.inc.Incident(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[custos.TenantID][2]int64{}
	for _, n := range ns {
		counts[n.Tenant] = [2]int64{n.Subjects, n.Records}
	}
	want := map[custos.TenantID][2]int64{a.ID: {2, 4}, b.ID: {1, 1}}
	if len(counts) != 2 || counts[a.ID] != want[a.ID] || counts[b.ID] != want[b.ID] {
		t.Errorf("January window over A and B: counts (subjects, records) = %v, want A %v, B %v and nothing for the other tenant", counts, want[a.ID], want[b.ID])
	}

	// Affected subjects, one per page: u1 and u3 (whatever their order).
	var users []string
	var after custos.SubjectID
	for page := 0; ; page++ {
		got, more, err := e.inc.AffectedSubjects(ctx, a.ID, inc.ID, after, 1, audit.ActorTenant)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 1 || page > 5 {
			t.Fatalf("page %d has %d subjects, limit 1", page, len(got))
		}
		for _, s := range got {
			users = append(users, s.Identifiers["user_id"]...)
			after = s.Subject
		}
		if !more {
			break
		}
	}
	slices.Sort(users)
	if !slices.Equal(users, []string{"u1", "u3"}) {
		t.Errorf("affected subjects in the January window = %v, want [u1 u3]", users)
	}
	if _, _, err := e.inc.AffectedSubjects(ctx, other.ID, inc.ID, custos.SubjectID{}, 10, audit.ActorTenant); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("affected subjects through a tenant out of scope: err = %v, want not found", err)
	}
	if got := e.auditActions(t, a.ID); !slices.Contains(got, "incident.affected_subjects.read") {
		t.Errorf("tenant A's chain = %v, want incident.affected_subjects.read", got)
	}

	// All tenants, no window: every event up to the opening.
	c.Add(time.Hour)
	e.track(t, a.ID, "late", now.Add(48*time.Hour)) // after the opening: not in scope
	all := openInput(now.Add(-time.Hour))
	all.Scope = custos.IncidentScope{AllTenants: true}
	inc2, err := e.inc.Open(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	_, ns, _ = e.inc.Incident(ctx, inc2.ID)
	counts = map[custos.TenantID][2]int64{}
	for _, n := range ns {
		counts[n.Tenant] = [2]int64{n.Subjects, n.Records}
	}
	want = map[custos.TenantID][2]int64{a.ID: {4, 9}, b.ID: {1, 1}, other.ID: {1, 1}}
	for id, w := range want {
		if counts[id] != w {
			t.Errorf("all tenants, no window: tenant %s counts = %v, want %v", id, counts[id], w)
		}
	}
}

// TestBadInput checks that each missing or wrong field is named.
func TestBadInput(t *testing.T) {
	e := newEnv(t, nil, nil)
	a, _ := e.tenant(t, "a", "")
	ctx := context.Background()
	good := openInput(time.Now().Add(-time.Hour), a.ID)
	for _, tc := range []struct {
		field  string
		change func(*incident.OpenInput)
	}{
		{"detected_at", func(in *incident.OpenInput) { in.DetectedAt = time.Time{} }},
		{"detected_at", func(in *incident.OpenInput) { in.DetectedAt = time.Now().Add(time.Hour) }},
		{"nature", func(in *incident.OpenInput) { in.Nature = " " }},
		{"data_categories", func(in *incident.OpenInput) { in.DataCategories = nil }},
		{"likely_consequences", func(in *incident.OpenInput) { in.Consequences = "" }},
		{"measures_taken", func(in *incident.OpenInput) { in.Measures = "" }},
		{"contact_point", func(in *incident.OpenInput) { in.ContactPoint = "" }},
		{"scope", func(in *incident.OpenInput) { in.Scope = custos.IncidentScope{} }},
		{"scope", func(in *incident.OpenInput) { in.Scope.AllTenants = true }},
		{"scope.tenants[1]", func(in *incident.OpenInput) { in.Scope.Tenants = append(in.Scope.Tenants, custos.NewTenantID()) }},
		{"scope.events_to", func(in *incident.OpenInput) {
			in.Scope.EventsFrom, in.Scope.EventsTo = time.Now(), time.Now().Add(-time.Hour)
		}},
	} {
		in := good
		in.Scope.Tenants = slices.Clone(good.Scope.Tenants)
		tc.change(&in)
		_, err := e.inc.Open(ctx, in)
		if custos.ErrorCode(err) != custos.Invalid || !strings.Contains(custos.ErrorMessage(err), tc.field) {
			t.Errorf("bad %s: err = %v, want invalid naming %s", tc.field, err, tc.field)
		}
	}
	if list, _ := e.inc.Incidents(ctx); len(list) != 0 {
		t.Errorf("bad inputs stored %d incidents", len(list))
	}
}

// TestRefusedTransfer checks that a security contact URL outside the
// tenant's region is not sent to when transfers are forbidden, and that
// the operator sees why.
func TestRefusedTransfer(t *testing.T) {
	e := newEnv(t, nil, nil)
	recv := newReceiver(t, 0)
	// Set while transfers were allowed, then forbidden again.
	a, _ := e.tenant(t, "a", `{"allow_transfers_outside_region": true, "security_contact_url": {"url": "`+recv.URL+`", "region": "us"}}`)
	if _, _, err := e.reg.UpdateSettings(context.Background(), a.ID, []byte(`{"allow_transfers_outside_region": false}`)); err != nil {
		t.Fatal(err)
	}
	a, _ = e.reg.Get(a.ID)
	e.run()
	inc, err := e.inc.Open(context.Background(), openInput(time.Now(), a.ID))
	if err != nil {
		t.Fatal(err)
	}
	_, n, _ := e.inc.TenantIncident(context.Background(), a.ID, inc.ID)
	wh := n.Messages[0].Channel(custos.ChannelWebhook)
	if wh.Status != custos.DeliveryRefused || !strings.Contains(wh.Note, "transfers outside the region are forbidden") {
		t.Errorf("webhook to region us of an eu tenant: %+v; want refused, naming the transfer rule", wh)
	}
	if w := incident.Warnings(n); len(w) == 0 || !strings.Contains(strings.Join(w, " "), "forbidden") {
		t.Errorf("warnings = %v, want the refusal", w)
	}
	// A full outbox pass, made here: anything queued for the receiver
	// would be delivered by it.
	if _, err := e.outbox.DeliverDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.got) != 0 {
		t.Errorf("the receiver outside the region got %d deliveries", len(recv.got))
	}
}

// TestRestartDeliversPending stops the node with a webhook and an e-mail
// pending — and with a tenant not yet notified at all, as after a crash
// between storing the incident and notifying — and checks that the next
// start delivers all of it.
func TestRestartDeliversPending(t *testing.T) {
	smtp := mailtest.Start(t)
	e := newEnv(t, nil, mailConfig(smtp))
	recv := newReceiver(t, 0)
	a, secret := e.tenant(t, "a", `{"security_contact_url": {"url": "`+recv.URL+`", "region": "eu"}, "security_contact_email": "sec@a.example"}`)
	b, _ := e.tenant(t, "b", `{"security_contact_email": "sec@b.example"}`)
	ctx := context.Background()
	// Nothing runs: the notification is stored, the deliveries wait.
	inc, err := e.inc.Open(ctx, openInput(time.Now(), a.ID))
	if err != nil {
		t.Fatal(err)
	}
	// As if the node crashed after adding tenant B but before telling it.
	stored, err := e.store.Incident(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored.Tenants = append(stored.Tenants, b.ID)
	if err := e.store.PutIncident(ctx, stored); err != nil {
		t.Fatal(err)
	}
	e.close()
	if len(smtp.Messages()) != 0 {
		t.Fatalf("an e-mail left before the restart")
	}

	e.open(t)
	if err := e.inc.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	e.run()
	got := recv.wait(t, 1)
	if err := webhook.Verify([]byte(secret), got[0].body, got[0].header.Get(webhook.HeaderSignature), time.Now(), 0); err != nil {
		t.Errorf("webhook after restart: %v", err)
	}
	if msgs := smtp.Wait(2, 10*time.Second); len(msgs) != 2 {
		t.Errorf("after restart the SMTP server got %d messages, want 2 (tenant A's pending one, tenant B's)", len(msgs))
	}
	if _, n, err := e.inc.TenantIncident(ctx, b.ID, inc.ID); err != nil || len(n.Messages) != 1 {
		t.Errorf("tenant B after resume: %v, %v; want notified", n, err)
	}
	if len(recv.wait(t, 1)) != 1 {
		t.Errorf("webhook delivered more than once")
	}
}
