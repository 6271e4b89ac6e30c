package campaign

import "github.com/custos-dev/custos"

// SetBeforeGate makes the engine call fn just before each recipient is
// gated, so a test can land a change "during the run".
func (e *Engine) SetBeforeGate(fn func(custos.SubjectID)) { e.beforeGate = fn }
