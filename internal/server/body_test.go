package server

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/custos-dev/custos"
)

func TestDecodeBody(t *testing.T) {
	type in struct {
		Name   string `json:"name"`
		Months int    `json:"months"`
	}
	for _, c := range []struct {
		name, body string
		limit      int64
		code       custos.Code // "" for success
		message    string
	}{
		{"ok", `{"name":"a","months":2}`, 100, "", ""},
		{"ok with space after", "{\"name\":\"a\"}\n  ", 100, "", ""},
		{"over the limit", `{"name":"` + strings.Repeat("x", 200) + `"}`, 100, custos.TooLarge, "larger than 100 bytes"},
		{"exactly the limit", `{"name":"` + strings.Repeat("x", 90) + `"}`, 101, "", ""},
		{"empty", "", 100, custos.Invalid, "empty"},
		{"blank", "  \n", 100, custos.Invalid, "empty"},
		{"unknown field", `{"nom":"a"}`, 100, custos.Invalid, `unknown field "nom"`},
		{"wrong type", `{"months":"two"}`, 100, custos.Invalid, "field months must be a number, not string"},
		{"second value", `{"name":"a"}{"name":"b"}`, 100, custos.Invalid, "unexpected data after the JSON value"},
		{"garbage after", `{"name":"a"} x`, 100, custos.Invalid, "unexpected data after the JSON value"},
		{"cut short", `{"name":"a"`, 100, custos.Invalid, "cut short"},
		{"syntax", `{"name":}`, 100, custos.Invalid, "invalid JSON at byte"},
		{"not an object", `[1]`, 100, custos.Invalid, "must be an object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
			got, err := decodeBody[in](w, r, c.limit)
			if c.code == "" {
				if err != nil {
					t.Fatalf("decodeBody(%q) = %v", c.body, err)
				}
				if got.Name == "" {
					t.Errorf("decodeBody(%q) = %+v; want the name", c.body, got)
				}
				return
			}
			if custos.ErrorCode(err) != c.code || !strings.Contains(custos.ErrorMessage(err), c.message) {
				t.Errorf("decodeBody(%q) = %v; want %s naming %q", c.body, err, c.code, c.message)
			}
		})
	}
}

func TestDecodeOptionalBody(t *testing.T) {
	w := httptest.NewRecorder()
	got, err := decodeOptionalBody[struct {
		Reason string `json:"reason"`
	}](w, httptest.NewRequest("POST", "/", strings.NewReader("")), 100)
	if err != nil || got.Reason != "" {
		t.Errorf("decodeOptionalBody(empty) = %+v, %v; want the zero value", got, err)
	}
	_, err = decodeOptionalBody[struct {
		Reason string `json:"reason"`
	}](w, httptest.NewRequest("POST", "/", strings.NewReader(`{"why":"x"}`)), 100)
	if custos.ErrorCode(err) != custos.Invalid {
		t.Errorf("decodeOptionalBody(unknown field) = %v; want Invalid", err)
	}
}
