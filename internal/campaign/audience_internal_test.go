package campaign

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/custos-dev/custos"
)

func TestMatchTrait(t *testing.T) {
	traits := map[string]json.RawMessage{
		"plan": []byte(`"pro"`), "age": []byte(`41`), "score": []byte(`7.5`), "vip": []byte(`true`),
		"tags": []byte(`["a","b",3]`), "name": []byte(`"Ann \"Q\" Lee"`), "gone": []byte(`null`),
		"address": []byte(`{"city":"Lyon","zip":"69001"}`), "since": []byte(`"2024-05-01"`),
	}
	for _, tc := range []struct {
		key, op, value string
		want           bool
	}{
		{"plan", "eq", `"pro"`, true},
		{"plan", "eq", `"Pro"`, false},
		{"plan", "neq", `"free"`, true},
		{"missing", "neq", `"free"`, true},
		{"missing", "eq", `"free"`, false},
		{"age", "eq", `41.0`, true},
		{"age", "eq", `"41"`, false},
		{"age", "gt", `40`, true},
		{"age", "gt", `41`, false},
		{"age", "lt", `41.5`, true},
		{"score", "gt", `"7"`, false}, // a number and a string are not ordered
		{"since", "gt", `"2024-01-01"`, true},
		{"since", "lt", `"2024-01-01"`, false},
		{"vip", "eq", `true`, true},
		{"plan", "exists", ``, true},
		{"gone", "exists", ``, false},
		{"missing", "exists", ``, false},
		{"missing", "exists", `false`, true},
		{"name", "contains", `"q"`, true},
		{"name", "eq", `"Ann \"Q\" Lee"`, true},
		{"tags", "contains", `"b"`, true},
		{"tags", "contains", `3`, true},
		{"tags", "contains", `"c"`, false},
		{"address.city", "eq", `"Lyon"`, true},
		{"address.zip", "gt", `"69000"`, true},
		{"address.street", "exists", ``, false},
		{"missing", "gt", `1`, false},
	} {
		c := custos.TraitCondition{Key: tc.key, Op: tc.op}
		if tc.value != "" {
			c.Value = json.RawMessage(tc.value)
		}
		if got := matchTrait(traits, c); got != tc.want {
			t.Errorf("%s %s %s = %v, want %v", tc.key, tc.op, tc.value, got, tc.want)
		}
	}
}

func TestValidateAudience(t *testing.T) {
	for _, tc := range []struct {
		a    custos.Audience
		want string // "" valid, else a field the error names
	}{
		{custos.Audience{}, ""},
		{custos.Audience{Traits: []custos.TraitCondition{{Key: "plan", Op: "eq", Value: []byte(`"pro"`)}}}, ""},
		{custos.Audience{Traits: []custos.TraitCondition{{Key: "", Op: "eq", Value: []byte(`1`)}}}, "audience.traits[0].key"},
		{custos.Audience{Traits: []custos.TraitCondition{{Key: "a", Op: "like", Value: []byte(`1`)}}}, "audience.traits[0].op"},
		{custos.Audience{Traits: []custos.TraitCondition{{Key: "a", Op: "eq"}}}, "audience.traits[0].value"},
		{custos.Audience{Traits: []custos.TraitCondition{{Key: "a", Op: "gt", Value: []byte(`{"x":1}`)}}}, "audience.traits[0].value"},
		{custos.Audience{Events: []custos.EventCondition{{Name: "Order", WithinDays: -1}}}, "audience.events[0].within_days"},
		{custos.Audience{Events: []custos.EventCondition{{Name: "Order", MinCount: -2}}}, "audience.events[0].min_count"},
		{custos.Audience{Events: []custos.EventCondition{{Name: "Order", MinCount: maxMinCount + 1}}}, "1000000"},
		{custos.Audience{Traits: []custos.TraitCondition{{Key: "a", Op: "eq", Value: []byte(`"` + strings.Repeat("x", maxValueLen) + `"`)}}}, "at most 4096"},
		{custos.Audience{Traits: make([]custos.TraitCondition, maxTraitConditions+1)}, "at most 50"},
		{custos.Audience{Events: make([]custos.EventCondition, maxEventConditions+1)}, "at most 10"},
	} {
		err := validateAudience(&tc.a)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("validateAudience(%+v) = %v, want nil", tc.a, err)
		case tc.want != "" && (err == nil || !strings.Contains(custos.ErrorMessage(err), tc.want) || custos.ErrorCode(err) != custos.Invalid):
			t.Errorf("validateAudience(%+v) = %v, want an Invalid error naming %s", tc.a, err, tc.want)
		}
	}
}

// TestTemplatesKeepTraitsInTheirContext: a trait can never break out of
// the context it is rendered in — HTML, a header line, a JSON value.
func TestTemplatesKeepTraitsInTheirContext(t *testing.T) {
	evil := `</p><script>alert(1)</script>"onload="x` + "\r\nBcc: all@example.com"
	p := &custos.Profile{Traits: map[string]json.RawMessage{"first_name": mustRaw(evil)}}
	data := templateData(p, "https://u.example/u/tok")

	mail, err := parseTemplates(custos.ChannelEmail, custos.CampaignMessage{Subject: "Hi {{.traits.first_name}}",
		Body: `<p title="{{.traits.first_name}}">Hi {{.traits.first_name}} {{.traits.nope}}</p><a href="{{.unsubscribe_url}}">x</a>`})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.render(data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.Body, "<script>") || strings.Contains(m.Body, `"onload="`) {
		t.Errorf("HTML body lets the trait out: %s", m.Body)
	}
	if strings.ContainsAny(m.Subject, "\r\n") || !strings.HasPrefix(m.Subject, "Hi </p>") {
		t.Errorf("subject %q keeps a line break (header injection) or lost the trait", m.Subject)
	}
	if strings.Contains(m.Body, "no value") {
		t.Errorf("a missing trait rendered as %q", m.Body)
	}
	if !strings.Contains(m.Text, "Hi </p><script>") && !strings.Contains(m.Text, "Hi") {
		t.Errorf("text part %q", m.Text)
	}

	hook, err := parseTemplates(custos.ChannelWebhook, custos.CampaignMessage{Body: `{"name":"{{.traits.first_name}}"} {{.traits.nope}}`})
	if err != nil {
		t.Fatal(err)
	}
	w, err := hook.render(data)
	if err != nil {
		t.Fatal(err)
	}
	if w.Body != `{"name":"`+evil+`"} ` {
		t.Errorf("webhook body = %q, want the trait verbatim (it is JSON-encoded as a whole when sent)", w.Body)
	}
	if out, _ := json.Marshal(WebhookMessage{Body: w.Body}); !json.Valid(out) {
		t.Errorf("webhook message is not valid JSON: %s", out)
	}

	for _, bad := range []custos.CampaignMessage{
		{Subject: "x", Body: "{{.traits.first_name"},
		{Subject: "x", Body: `<a href="{{.traits.x}}`},
		{Subject: "{{", Body: "x"},
		{Subject: "", Body: "x"},
		{Subject: "x", Body: " "},
	} {
		if _, err := parseTemplates(custos.ChannelEmail, bad); custos.ErrorCode(err) != custos.Invalid {
			t.Errorf("parseTemplates(%+v) = %v, want Invalid", bad, err)
		}
	}
}

func mustRaw(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
