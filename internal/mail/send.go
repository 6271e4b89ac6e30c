package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Config is how to reach a mail server.
type Config struct {
	Host     string
	Port     int
	Username string
	Password string
	// TLS is "starttls" (the default: the server must offer STARTTLS),
	// "tls" (implicit TLS) or "none" (plain text, for a local test server).
	TLS  string
	From string
	// RootCAs verifies the server's certificate; nil means the system pool.
	RootCAs *x509.CertPool
	// Timeout bounds connecting and each command; 0 means 30 s.
	Timeout time.Duration
	// Dial, if set, opens the connection to the server (netguard's
	// DialContext, which refuses internal addresses); nil dials directly.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Header is one extra header line.
type Header struct{ Name, Value string }

// Message is one e-mail to one recipient.
type Message struct {
	To      string
	Subject string
	// Text is the plain-text body; HTML, when set, is sent as its
	// alternative.
	Text    string
	HTML    string
	Headers []Header
}

// Error is a failed send. Temporary reports whether trying again later
// may succeed (a 4xx SMTP answer, a network failure); a permanent failure
// (5xx, a refused address, bad credentials) will not.
type Error struct {
	Temporary bool
	Err       error
}

func (e *Error) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "temporary"
	}
	return fmt.Sprintf("send mail (%s failure): %v", kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Send delivers m through the server cfg names.
func Send(ctx context.Context, cfg Config, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(cfg.From); err != nil {
		return &Error{Err: fmt.Errorf("from %q: %w", cfg.From, err)}
	}
	if err := msg.To(m.To); err != nil {
		return &Error{Err: fmt.Errorf("to: %w", err)}
	}
	msg.Subject(m.Subject)
	msg.SetMessageID()
	msg.SetDate()
	for _, h := range m.Headers {
		msg.SetGenHeaderPreformatted(gomail.Header(h.Name), h.Value)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}

	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	opts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(&tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}),
	}
	switch cfg.TLS {
	case "", "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls":
		opts = append(opts, gomail.WithSSL())
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return &Error{Err: fmt.Errorf("tls mode %q must be starttls, tls or none", cfg.TLS)}
	}
	if cfg.Dial != nil {
		opts = append(opts, gomail.WithDialContextFunc(cfg.Dial))
	}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	c, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return &Error{Err: fmt.Errorf("smtp client for %s: %w", cfg.Host, err)}
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return &Error{Temporary: temporary(err), Err: err}
	}
	return nil
}

// temporary classifies a send error: an SMTP 5xx answer is permanent,
// anything else (4xx, network, TLS handshake) may pass on a retry.
func temporary(err error) bool {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code < 500
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		if code := se.ErrorCode(); code >= 500 && code < 600 {
			return false
		}
		if code := se.ErrorCode(); code >= 400 && code < 500 {
			return true
		}
		return se.IsTemp() || se.ErrorCode() == 0
	}
	return true
}
