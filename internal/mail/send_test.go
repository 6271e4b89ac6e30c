package mail_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/mail"
	"github.com/custos-dev/custos/internal/mail/mailtest"
)

func config(s *mailtest.Server) mail.Config {
	return mail.Config{Host: s.Host, Port: s.Port, Username: s.Username, Password: s.Password, From: "news@example.com", RootCAs: s.RootCAs, Timeout: 5 * time.Second}
}

// TestSend checks a message arrives over STARTTLS with its extra headers
// and both bodies.
func TestSend(t *testing.T) {
	s := mailtest.Start(t)
	err := mail.Send(context.Background(), config(s), mail.Message{
		To: "ann@example.org", Subject: "Hello Ann", Text: "plain body", HTML: "<p>html body</p>",
		Headers: []mail.Header{{Name: "List-Unsubscribe", Value: "<https://x.example/u/1>"}, {Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"}},
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := s.Messages()
	if len(got) != 1 {
		t.Fatalf("server has %d messages, want 1", len(got))
	}
	m := got[0]
	h := m.Header()
	if m.From != "news@example.com" || len(m.To) != 1 || m.To[0] != "ann@example.org" {
		t.Errorf("envelope from %q to %v", m.From, m.To)
	}
	for name, want := range map[string]string{"Subject": "Hello Ann", "List-Unsubscribe": "<https://x.example/u/1>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"} {
		if got := h.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	if !strings.Contains(string(m.Data), "plain body") || !strings.Contains(string(m.Data), "html body") {
		t.Errorf("message lacks a body:\n%s", m.Data)
	}
}

// TestSendErrors checks failures are classified: a 451 may pass later,
// bad credentials and a server without STARTTLS trust will not.
func TestSendErrors(t *testing.T) {
	s := mailtest.Start(t)
	ctx := context.Background()
	msg := mail.Message{To: "ann@example.org", Subject: "s", Text: "t"}

	s.FailNext(1)
	err := mail.Send(ctx, config(s), msg)
	var me *mail.Error
	if !errors.As(err, &me) || !me.Temporary {
		t.Errorf("after a 451: err = %v, want a temporary *mail.Error", err)
	}
	if err := mail.Send(ctx, config(s), msg); err != nil {
		t.Errorf("retry after the 451: %v", err)
	}

	bad := config(s)
	bad.Password = "wrong"
	if err := mail.Send(ctx, bad, msg); !errors.As(err, &me) || me.Temporary {
		t.Errorf("wrong password: err = %v, want a permanent *mail.Error", err)
	}

	untrusted := config(s)
	untrusted.RootCAs = nil
	if err := mail.Send(ctx, untrusted, msg); err == nil {
		t.Errorf("a server certificate no one vouches for was accepted")
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("server has %d messages, want only the retried one", n)
	}
}
