package rights

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/opendsr"
	"github.com/custos-dev/custos/internal/urlpolicy"
)

// RecipientInput is a new recipient as a tenant describes it.
type RecipientInput struct {
	Name string
	// Kind is custos.RecipientWebhook (the default) or custos.RecipientOpenDSR.
	Kind   string
	URL    string
	Secret string
	Region string // default: the tenant's
	// Domain (OpenDSR) is the processor domain; default the URL's host.
	Domain string
	// CertificatePEM (OpenDSR) pins the processor certificate.
	CertificatePEM string
	Actor          string
}

// MaxRecipients is how many recipients a tenant may have: every erasure
// notifies each, so the bound also bounds the work one request makes.
const MaxRecipients = 100

// AddRecipient validates and stores a recipient of the tenant. Its
// secret is sealed with the tenant key before it is stored. A recipient
// outside the tenant's region is refused when the tenant forbids
// transfers.
func (e *Engine) AddRecipient(ctx context.Context, t *custos.Tenant, in RecipientInput) (*custos.Recipient, error) {
	if e.recipients == nil {
		return nil, custos.Errorf(custos.NotImplemented, "recipients are not available on this node")
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Kind == "" {
		in.Kind = custos.RecipientWebhook
	}
	// An OpenDSR recipient's credential travels as a Bearer token, so its
	// URL must be https but for a loopback address (development, tests).
	policy := urlpolicy.Policy{HTTPS: in.Kind == custos.RecipientOpenDSR, LoopbackHTTP: true, Host: e.urlHost}
	u, err := policy.Check("url", in.URL)
	switch {
	case in.Name == "" || len(in.Name) > 200:
		return nil, custos.Errorf(custos.Invalid, "name is required (at most 200 characters)")
	case in.Kind != custos.RecipientWebhook && in.Kind != custos.RecipientOpenDSR:
		return nil, custos.Errorf(custos.Invalid, "kind %q is not webhook or opendsr", in.Kind)
	case err != nil:
		if in.Kind == custos.RecipientOpenDSR {
			return nil, custos.Errorf(custos.Invalid, "%v: the secret of an opendsr recipient is sent with every call", err)
		}
		return nil, custos.Errorf(custos.Invalid, "%v", err)
	}
	rc := &custos.Recipient{Tenant: t.ID, Name: in.Name, Kind: in.Kind, URL: in.URL, Region: in.Region}
	switch in.Kind {
	case custos.RecipientWebhook:
		if len(in.Secret) < 16 {
			return nil, custos.Errorf(custos.Invalid, "secret must be at least 16 characters: it signs every notice (HMAC-SHA-256)")
		}
		if in.Domain != "" || in.CertificatePEM != "" {
			return nil, custos.Errorf(custos.Invalid, "domain and certificate_pem apply to opendsr recipients only")
		}
	case custos.RecipientOpenDSR:
		if err := checkOpenDSRRecipient(rc, u, in); err != nil {
			return nil, err
		}
	}
	if rc.Region == "" {
		rc.Region = t.Region
	}
	if existing, err := e.recipients.Recipients(ctx, t.ID); err != nil {
		return nil, fmt.Errorf("count recipients: %w", err)
	} else if len(existing) >= MaxRecipients {
		return nil, custos.Errorf(custos.Invalid, "the tenant has %d recipients, the most allowed (limit %d): delete one first", len(existing), MaxRecipients)
	}
	if err := t.Settings.CheckDestination(t.Region, "recipient "+rc.Name, rc.Region); err != nil {
		return nil, err
	}
	b := make([]byte, 8)
	rand.Read(b)
	rc.CreatedAt = e.now().UTC()
	rc.ID = "rcp_" + rc.CreatedAt.Format("20060102T150405") + "_" + hex.EncodeToString(b)
	if rc.Secret, err = e.keys.SealTenant(t.ID, recipientSecretRecord(rc.ID), []byte(in.Secret)); err != nil {
		return nil, fmt.Errorf("seal recipient secret: %w", err)
	}
	if err := e.recipients.PutRecipient(ctx, rc); err != nil {
		return nil, err
	}
	if in.Actor == "" {
		in.Actor = audit.ActorTenant
	}
	_, err = e.audit.Record(ctx, t.ID, audit.Entry{Actor: in.Actor, Action: "recipient.created",
		Details: map[string]string{"recipient": rc.ID, "kind": rc.Kind, "region": rc.Region}})
	return rc, err
}

// checkOpenDSRRecipient fills and checks what an OpenDSR recipient needs.
// Its credential travels as a Bearer token, so the URL must be https but
// for a loopback address (development and tests).
func checkOpenDSRRecipient(rc *custos.Recipient, u *url.URL, in RecipientInput) error {
	if in.Secret == "" || len(in.Secret) > 4096 {
		return custos.Errorf(custos.Invalid, "secret is required: the API credential Custos presents to the recipient (Bearer)")
	}
	rc.Domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(in.Domain), "."))
	if rc.Domain == "" {
		rc.Domain = strings.ToLower(u.Hostname())
	}
	if strings.ContainsAny(rc.Domain, "/:@ ") || len(rc.Domain) > 253 {
		return custos.Errorf(custos.Invalid, "domain must be a DNS name, e.g. processor.example")
	}
	if in.CertificatePEM != "" {
		cert, err := parseCertificate([]byte(in.CertificatePEM))
		if err != nil {
			return custos.Errorf(custos.Invalid, "certificate_pem: %v", err)
		}
		if opendsr.CheckDomain(cert, rc.Domain) != nil {
			return custos.Errorf(custos.Invalid, "certificate_pem is not issued for the domain %q (its DNS names: %s)", rc.Domain, strings.Join(cert.DNSNames, ", "))
		}
		rc.CertificatePEM = []byte(in.CertificatePEM)
	}
	return nil
}

// parseCertificate reads the first certificate of a PEM text.
func parseCertificate(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the certificate does not parse: %v", err)
	}
	return cert, nil
}

// recipientSecretRecord is the record key a recipient's secret is sealed
// under.
func recipientSecretRecord(id string) []byte { return []byte("recipient/" + id + "/secret") }

// recipientSecret opens a recipient's sealed secret.
func (e *Engine) recipientSecret(rc *custos.Recipient) ([]byte, error) {
	s, err := e.keys.OpenTenant(rc.Tenant, recipientSecretRecord(rc.ID), rc.Secret)
	if err != nil {
		return nil, fmt.Errorf("open the secret of recipient %s: %w", rc.ID, err)
	}
	return s, nil
}
