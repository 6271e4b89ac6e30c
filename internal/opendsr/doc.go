// Package opendsr speaks OpenDSR (formerly OpenGDPR) v2.0, the
// machine-to-machine API through which controllers send data-subject
// requests to processors, as the processor side: it decodes and validates
// incoming requests (ParseRequest), maps their identities onto Custos
// identifiers (Identity), defines the JSON bodies Custos answers and calls
// back with (RequestResponse, StatusResponse, Callback, Discovery, Error),
// and signs and verifies those bodies (Sign, Verify, CheckDomain).
//
// A signature is the base64 encoding of an RSA PKCS #1 v1.5 or ECDSA
// (ASN.1) signature over the SHA-256 digest of the exact bytes of a body,
// made with the key of the certificate a processor names in its discovery
// document and sent in the HeaderSignature header beside
// HeaderProcessorDomain. Because the bytes are signed, callers sign what
// they send and verify what they received before decoding it.
//
// The package holds no HTTP server wiring: routes, body size limits and
// status codes belong to internal/server.
package opendsr

// The HTTP headers that carry a signature and the domain whose certificate
// made it. Version 1 of the protocol (OpenGDPR) used the V1 names; the
// specification requires both to be honoured.
const (
	HeaderProcessorDomain   = "X-OpenDSR-Processor-Domain"
	HeaderSignature         = "X-OpenDSR-Signature"
	HeaderProcessorDomainV1 = "X-OpenGDPR-Processor-Domain"
	HeaderSignatureV1       = "X-OpenGDPR-Signature"
)

// The protocol versions this package accepts in api_version.
const (
	APIVersion   = "2.0"
	APIVersionV1 = "1.0"
)
