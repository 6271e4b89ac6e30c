// Package keyring holds Custos's encryption keys and does its
// cryptography: envelope encryption with a key per data subject, so that
// erasing a subject is destroying one small key (crypto-shredding).
//
// The hierarchy:
//
//	master key (32 bytes, outside the key store: env, key file or <data>/master.key)
//	└─ tenant key (random, one per tenant, wrapped by the master key)
//	   ├─ subject wrap key     (HKDF of the tenant key)
//	   │  └─ subject key        (random, one per subject, wrapped by the subject wrap key)
//	   │     └─ records         (AES-256-GCM, bound to tenant, subject and record key)
//	   └─ identifier-hash key  (HKDF of the tenant key): HMAC pseudonyms of
//	                            identifiers and message ids, for index keys
//
// Every wrapped key lives in a custos.KeyStore, never in the clear.
// Destroying a subject key (Ring.Shred) makes every record of that subject
// unreadable at once, in every copy of the data; destroying a tenant key
// (Ring.DeleteTenant) does the same for a whole tenant. A master key
// rotation (RotateMaster) re-wraps the tenant keys only: no data and no
// subject key is rewritten.
//
// Backups of the data must never hold the master key or the key store: a
// backup that holds both the data and its keys survives every shred.
package keyring
