package segment_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/custos-dev/custos/internal/segment"
)

func Example() {
	// What an HTTP handler for the ingestion paths does with a request.
	path, encoding := "/v1/batch", ""
	body := strings.NewReader(`{"writeKey":"wk_123","batch":[
		{"type":"track","userId":"u1","event":"Signed Up","timestamp":"2024-05-01T12:00:05Z"},
		{"type":"track","userId":"u2"}
	],"sentAt":"2024-05-01T12:00:10Z","context":{"library":{"name":"analytics-go"}}}`)
	receivedAt := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

	kind, ok := segment.PathKind(path)
	if !ok {
		return // 404
	}
	b, err := segment.ReadBody(body, encoding, segment.DefaultLimits)
	if err != nil {
		return // custos.ErrorCode(err) picks the status
	}
	batch, err := segment.Decode(b, kind, receivedAt, segment.DefaultLimits)
	if err != nil {
		return
	}
	fmt.Println("write key:", batch.WriteKey)
	for _, m := range batch.Messages {
		fmt.Println(m.Type, m.UserID, m.Event, m.Timestamp.Format(time.RFC3339), string(m.Context))
	}
	for _, r := range batch.Rejected {
		fmt.Printf("rejected %d: %s (%s)\n", r.Index, r.Reason, r.Message)
	}
	// Output:
	// write key: wk_123
	// track u1 Signed Up 2024-05-01T11:59:55Z {"library":{"name":"analytics-go"}}
	// rejected 1: missing_event (track has no event)
}
