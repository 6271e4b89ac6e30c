package opendsr

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/custos-dev/custos"
)

// ErrSignature is returned by Verify when a signature is malformed or does
// not match the body and certificate. Its code is Forbidden: the
// specification answers a failed signature with 403.
var ErrSignature = &custos.Error{Code: custos.Forbidden, Message: "OpenDSR signature does not verify"}

// sigEncoding is strict so that no two signature strings decode to the
// same bytes: a changed padding bit is an invalid signature, not an
// ignored one.
var sigEncoding = base64.StdEncoding.Strict()

// Sign returns the base64 signature of body for the HeaderSignature
// header (or a processor_signature field): RSA PKCS #1 v1.5 or ECDSA in
// ASN.1 form over the SHA-256 digest of body, made with key. key must hold
// an RSA or ECDSA private key, e.g. the PrivateKey of a tls.Certificate.
func Sign(key crypto.Signer, body []byte) (string, error) {
	switch key.Public().(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	default:
		return "", fmt.Errorf("opendsr sign: unsupported key type %T (want RSA or ECDSA)", key.Public())
	}
	digest := sha256.Sum256(body)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("opendsr sign: %w", err)
	}
	return sigEncoding.EncodeToString(sig), nil
}

// Verify checks that sig, as Sign makes it, was made over body by the key
// of cert. It checks only the signature: whether cert is trusted (chain,
// validity) and issued for the sender's domain (CheckDomain) are the
// caller's to establish. A failure returns ErrSignature.
func Verify(cert *x509.Certificate, body []byte, sig string) error {
	if cert == nil {
		return custos.Errorf(custos.Forbidden, "no certificate to verify the signature with")
	}
	raw, err := sigEncoding.DecodeString(sig)
	if err != nil || len(raw) == 0 {
		return ErrSignature
	}
	digest := sha256.Sum256(body)
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], raw) != nil {
			return ErrSignature
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest[:], raw) {
			return ErrSignature
		}
	default:
		return &custos.Error{Code: custos.Forbidden, Message: "certificate key is neither RSA nor ECDSA",
			Err: fmt.Errorf("key type %T", cert.PublicKey)}
	}
	return nil
}

// CheckDomain checks that cert is issued for domain, the value of the
// HeaderProcessorDomain header: one of its DNS subject alternative names
// must equal domain, ignoring case and a trailing dot. Wildcard names do
// not match; the common name is ignored, as modern TLS does.
func CheckDomain(cert *x509.Certificate, domain string) error {
	want := strings.TrimSuffix(domain, ".")
	if want == "" {
		return custos.Errorf(custos.Forbidden, "no processor domain given")
	}
	for _, name := range cert.DNSNames {
		if strings.EqualFold(strings.TrimSuffix(name, "."), want) {
			return nil
		}
	}
	return custos.Errorf(custos.Forbidden, "certificate is not issued for %q", clip(domain))
}
