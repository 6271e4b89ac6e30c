// Package loadgen drives a Segment-spec ingestion endpoint with realistic
// traffic and measures how fast it acknowledges it: the engine behind
// `custos bench ingest`.
//
// The payloads look like what github.com/segmentio/analytics-go/v3 sends:
// batches with a batch-level context naming the library, track messages of
// about 535 bytes of JSON (the event size of the peer benchmark) with a
// web or mobile context and e-commerce properties, and about one identify
// in twenty so that profiles with traits exist. Messages are rendered from
// templates prepared once per run, so building a 100-event batch costs
// about 20 microseconds without allocating, and the generator stays far
// cheaper than the server it measures, even on the same machine.
//
// Latencies go into a log-bucketed histogram of fixed size, so memory stays
// flat however long a run is, with percentiles accurate to about half a
// percent.
package loadgen
