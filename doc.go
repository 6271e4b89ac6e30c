// Package custos holds the domain types of Custos — tenants, subjects,
// messages, events, profiles — and the storage contracts every store
// implements. It imports only the standard library; implementations live
// under internal/ and cmd/custos wires them together.
package custos
