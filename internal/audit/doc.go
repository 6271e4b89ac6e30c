// Package audit keeps the tamper-evident audit log of Custos: one hash
// chain per tenant, and one more, under custos.OperatorChain, for operator
// actions that concern no single tenant.
//
// Every entry carries the hash of the entry before it (PrevHash; the first
// carries Genesis) and its own Hash, SHA-256 over its content and PrevHash
// (see Hash). Changing an entry, removing one or reordering entries breaks
// the chain at that point, and Verify and VerifyStore name the first
// sequence number where it breaks and why.
//
// Removing the newest entries leaves a shorter chain that is still
// consistent, so the chain alone cannot reveal it. For that the node signs
// the head of a chain with its Ed25519 key (Log.Checkpoint, LoadSigningKey);
// a checkpoint kept outside the store — in a ticket, an e-mail, another
// system — lets VerifyAgainst and VerifyStoreAgainst prove the chain still
// reaches the head it had when signed. PublicKeyPEM publishes the key for
// offline verifiers.
//
// # No personal data
//
// Audit entries outlive erasure: they are the proof that an erasure
// happened. So they must never carry personal data, or erasing a subject
// would leave the subject behind in the log:
//
//   - A subject appears only as a pseudonym: the caller passes a keyed
//     hash (HMAC with a tenant key), never an e-mail address, user id or
//     other identifier, and never anything that could be reversed into
//     one without the tenant's key.
//   - Rectification records the names of the traits changed, never their
//     old or new values.
//   - Details hold names, counts, codes and ids of Custos's own objects —
//     never message content, trait values, IP addresses or free text a data
//     subject supplied.
//   - Actor names an API key id or an operator account, not a person's
//     contact details.
//
// Entries are therefore stored unsealed, outside the tenant's data range,
// and survive the deletion of the tenant's data.
package audit
