package segment

import (
	"bytes"
	stdjson "encoding/json"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

func BenchmarkCalibValid(b *testing.B) {
	body := batchBody(100)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if !jsontext.Value(body).IsValid(jsontext.AllowInvalidUTF8(true)) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkCalibDecoderSkip(b *testing.B) {
	body := batchBody(100)
	b.SetBytes(int64(len(body)))
	var d jsontext.Decoder
	for b.Loop() {
		d.Reset(bytes.NewBuffer(body), jsontext.AllowInvalidUTF8(true))
		if _, err := d.ReadValue(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCalibDecoderTokens(b *testing.B) {
	body := batchBody(100)
	b.SetBytes(int64(len(body)))
	var d jsontext.Decoder
	for b.Loop() {
		d.Reset(bytes.NewBuffer(body), jsontext.AllowInvalidUTF8(true))
		for {
			if _, err := d.ReadToken(); err != nil {
				break
			}
		}
	}
}

type calibMsg struct {
	Type        string         `json:"type"`
	MessageID   string         `json:"messageId"`
	UserID      jsontext.Value `json:"userId"`
	AnonymousID jsontext.Value `json:"anonymousId"`
	Event       string         `json:"event"`
	Timestamp   string         `json:"timestamp"`
	Context     jsontext.Value `json:"context"`
	Properties  jsontext.Value `json:"properties"`
}

type calibBatch struct {
	Batch   []calibMsg     `json:"batch"`
	Context jsontext.Value `json:"context"`
	SentAt  string         `json:"sentAt"`
}

func BenchmarkCalibUnmarshalV2(b *testing.B) {
	body := batchBody(100)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var v calibBatch
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCalibStdValid(b *testing.B) {
	body := batchBody(100)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if !stdjson.Valid(body) {
			b.Fatal("invalid")
		}
	}
}
