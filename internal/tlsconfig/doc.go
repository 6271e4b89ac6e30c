// Package tlsconfig builds the TLS configuration for custos serve.
//
// The policy is fixed, not configurable: TLS 1.2 at least, TLS 1.3 whenever
// the client supports it, and for TLS 1.2 only forward-secret AEAD cipher
// suites (ECDHE with AES-GCM or ChaCha20-Poly1305). ALPN offers h2 and
// http/1.1.
//
// The certificate comes either from a PEM certificate and key file pair
// (Options.CertFile, Options.KeyFile) or, for development, from a
// self-signed pair that Load generates once under <DataDir>/tls and reuses.
//
// A Reloader watches the pair and swaps in a renewed certificate without a
// restart, so a certificate rotated on disk (certbot, cert-manager, a
// mounted secret) reaches new connections within one poll interval. A
// replacement that does not load is logged and the current certificate kept:
// a half-written renewal never takes the server down.
package tlsconfig
