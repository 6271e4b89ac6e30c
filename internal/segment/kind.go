package segment

import (
	"strings"

	"github.com/custos-dev/custos"
)

// Kind says what an ingestion path expects: a batch of messages, or one
// message of a fixed type. A single-message Kind with an empty Type takes
// the type from the body.
type Kind struct {
	// Batch is set for the batch paths, whose body holds a "batch" array.
	Batch bool
	// Type is the type of the one message a single-message path takes.
	Type custos.MessageType
}

// PathKind maps an ingestion URL path to its Kind: /v1/batch, /v1/b and
// /beacon/v1/batch are batches; /v1/track and /v1/t (and likewise for
// identify, page, screen, group and alias) are single messages of that
// type. One trailing slash is ignored. It reports false for any other path.
func PathKind(path string) (Kind, bool) {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	var t custos.MessageType
	switch path {
	case "/v1/batch", "/v1/b", "/beacon/v1/batch":
		return Kind{Batch: true}, true
	case "/v1/track", "/v1/t":
		t = custos.Track
	case "/v1/identify", "/v1/i":
		t = custos.Identify
	case "/v1/page", "/v1/p":
		t = custos.Page
	case "/v1/screen", "/v1/s":
		t = custos.Screen
	case "/v1/group", "/v1/g":
		t = custos.Group
	case "/v1/alias", "/v1/a":
		t = custos.Alias
	default:
		return Kind{}, false
	}
	return Kind{Type: t}, true
}

// messageType returns the message type named s, ignoring ASCII case, or
// false if s names none.
func messageType(s []byte) (custos.MessageType, bool) {
	switch string(s) { // the exact spelling every client sends, without allocating
	case "track":
		return custos.Track, true
	case "identify":
		return custos.Identify, true
	case "page":
		return custos.Page, true
	case "screen":
		return custos.Screen, true
	case "group":
		return custos.Group, true
	case "alias":
		return custos.Alias, true
	}
	for _, t := range [...]custos.MessageType{custos.Track, custos.Identify, custos.Page, custos.Screen, custos.Group, custos.Alias} {
		if strings.EqualFold(string(s), string(t)) {
			return t, true
		}
	}
	return "", false
}
