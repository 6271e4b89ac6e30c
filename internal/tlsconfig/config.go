package tlsconfig

import "crypto/tls"

// cipherSuites are the TLS 1.2 suites a server accepts: ECDHE key exchange
// for forward secrecy, AEAD encryption only. CBC suites (Lucky13 and kin)
// and static RSA key exchange (no forward secrecy, ROBOT) are left out.
// TLS 1.3 suites are not configurable and all qualify.
func cipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// curves are the key exchanges a server accepts: X25519 and P-256, plus the
// hybrid post-quantum exchanges built on them, which Go prefers when the
// client offers one. Leaving the hybrids out would record today's traffic
// in a form a future quantum computer could read, for personal data that
// must stay confidential for years.
func curves() []tls.CurveID {
	return []tls.CurveID{
		tls.X25519MLKEM768,
		tls.SecP256r1MLKEM768,
		tls.X25519,
		tls.CurveP256,
	}
}

// serverConfig is the policy of the package, with the certificate left to
// getCertificate.
func serverConfig(getCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     cipherSuites(),
		CurvePreferences: curves(),
		NextProtos:       []string{"h2", "http/1.1"},
		GetCertificate:   getCertificate,
	}
}
