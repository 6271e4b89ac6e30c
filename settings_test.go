package custos

import (
	"fmt"
	"strings"
	"testing"
)

// TestSettingsBounds: every size a tenant chooses in its settings is
// bounded, at the bound accepted, past it refused naming the field and
// the limit.
func TestSettingsBounds(t *testing.T) {
	purposes := func(n int) []Purpose {
		ps := make([]Purpose, n)
		for i := range ps {
			ps[i] = Purpose{Name: fmt.Sprintf("p%d", i), LegalBasis: "consent"}
		}
		return ps
	}
	categories := func(n int, nameLen int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("%0*d", nameLen, i)] = "p0"
		}
		return m
	}
	long := func(n int) string { return strings.Repeat("x", n) }
	for _, c := range []struct {
		name string
		s    Settings
		want string // "" accepted
	}{
		{"50 purposes", Settings{Purposes: purposes(50)}, ""},
		{"51 purposes", Settings{Purposes: purposes(51)}, "purposes holds 51 purposes; the limit is 50"},
		{"200 categories", Settings{Purposes: purposes(1), ConsentCategories: categories(200, 3)}, ""},
		{"201 categories", Settings{Purposes: purposes(1), ConsentCategories: categories(201, 3)}, "consent_categories holds 201 categories; the limit is 200"},
		{"category name of 128", Settings{Purposes: purposes(1), ConsentCategories: categories(1, 128)}, ""},
		{"category name of 129", Settings{Purposes: purposes(1), ConsentCategories: categories(1, 129)}, "consent_categories has a category name of 129 bytes; the limit is 128"},
		{"description of 1000", Settings{Purposes: []Purpose{{Name: "a", LegalBasis: "consent", Description: long(1000)}}}, ""},
		{"description of 1001", Settings{Purposes: []Purpose{{Name: "a", LegalBasis: "consent", Description: long(1001)}}}, "purposes[0].description is 1001 bytes; the limit is 1000"},
		{"controller_name of 1001", Settings{ControllerName: long(1001)}, "controller_name is 1001 bytes; the limit is 1000"},
		{"dpo_contact of 1001", Settings{DPOContact: long(1001)}, "dpo_contact is 1001 bytes; the limit is 1000"},
		{"security_contact_email of 321", Settings{SecurityContactEmail: long(300) + "@" + long(20)}, "security_contact_email is 321 bytes; the limit is 320"},
		{"delivery_webhook url of 2049", Settings{DeliveryWebhook: &Endpoint{URL: "https://a.example/" + long(2049-18)}}, "delivery_webhook.url is 2049 bytes; the limit is 2048"},
		{"smtp host of 254", Settings{SMTP: &SMTPSettings{Host: long(254), Port: 587, From: "a@b.c"}}, "smtp.host is 254 bytes; the limit is 253"},
		{"smtp password of 1001", Settings{SMTP: &SMTPSettings{Host: "smtp.example", Port: 587, From: "a@b.c", Password: long(1001)}}, "smtp.username and smtp.password are at most 1000 bytes each"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.s.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Validate(%s) = %v, want accepted", c.name, err)
			case c.want != "" && (ErrorCode(err) != Invalid || ErrorMessage(err) != c.want):
				t.Errorf("Validate(%s) = %v, want invalid: %s", c.name, err, c.want)
			}
		})
	}
}
