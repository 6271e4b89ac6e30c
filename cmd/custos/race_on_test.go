//go:build race

package main

// raceDetector: the tests run with -race, which slows every request
// several times over (JSON decoding, sealing) and so turns latency
// ratios into measures of CPU time.
const raceDetector = true
