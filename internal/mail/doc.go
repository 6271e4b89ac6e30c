// Package mail sends e-mail through a tenant's SMTP server: STARTTLS
// required by default, authentication when a user name is set, and errors
// that say whether a retry can help.
package mail
