package tenants_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/tenants"
	"github.com/custos-dev/custos/internal/testenv"
)

// TestSettingsDestinationsAskURLHost: every destination a settings patch
// sets is put to the URLHost check, and a refused one leaves the settings
// as they were, naming the field.
func TestSettingsDestinationsAskURLHost(t *testing.T) {
	s := testenv.Open(t, t.TempDir(), testenv.Master(), pebble.Options{CacheSize: 1 << 20, MemTableSize: 1 << 20})
	defer s.Close(t)
	ctx := context.Background()
	refused := errors.New("outbound address refused: internal")
	reg, err := tenants.Load(ctx, s.Store, s.Ring, "eu", time.Now, tenants.URLHost(func(h string) error {
		if h == "10.0.0.9" || h == "localhost" {
			return refused
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	tn, _, err := reg.Create(ctx, "dest", "eu")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ patch, want string }{
		{`{"delivery_webhook":{"url":"https://10.0.0.9/hook"}}`, "delivery_webhook.url: outbound address refused"},
		{`{"security_contact_url":{"url":"http://localhost:8080/sec"}}`, "security_contact_url.url: outbound address refused"},
		{`{"smtp":{"host":"10.0.0.9","port":587,"from":"a@b.example"}}`, "smtp.host: outbound address refused"},
	} {
		_, _, err := reg.UpdateSettings(ctx, tn.ID, []byte(c.patch))
		if custos.ErrorCode(err) != custos.Invalid || !strings.HasPrefix(custos.ErrorMessage(err), c.want) {
			t.Errorf("UpdateSettings(%s) = %v, want invalid: %s…", c.patch, err, c.want)
		}
	}
	got, _ := reg.Get(tn.ID)
	if got.Settings.DeliveryWebhook != nil || got.Settings.SecurityContactURL != nil || got.Settings.SMTP != nil {
		t.Errorf("refused patches changed the settings: %+v", got.Settings)
	}
	if _, _, err := reg.UpdateSettings(ctx, tn.ID, []byte(`{"delivery_webhook":{"url":"https://hooks.example/x"},"smtp":{"host":"smtp.example","port":587,"from":"a@b.example"}}`)); err != nil {
		t.Errorf("public destinations refused: %v", err)
	}
}
