package subjects_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is left running
// once they are done: every background part must stop when told.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
