package rights

// CrashAfter makes e stop an erasure after the named step, as a crash
// would, so that a test can restart and resume it.
func CrashAfter(e *Engine, step string) { e.crashAfter = step }

// ErasureSteps are the steps of an erasure, in order.
var ErasureSteps = erasureSteps
