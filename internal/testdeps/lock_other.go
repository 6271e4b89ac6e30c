//go:build !unix

package testdeps

// lock is a no-op where flock is missing: setups there are not shared
// between parallel test binaries.
func lock() (func(), error) { return func() {}, nil }
