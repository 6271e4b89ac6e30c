package segment

import (
	"testing"

	"github.com/custos-dev/custos"
)

func TestPathKind(t *testing.T) {
	tests := []struct {
		path string
		want Kind
		ok   bool
	}{
		{"/v1/batch", Kind{Batch: true}, true},
		{"/v1/b", Kind{Batch: true}, true},
		{"/beacon/v1/batch", Kind{Batch: true}, true},
		{"/v1/batch/", Kind{Batch: true}, true},
		{"/v1/track", Kind{Type: custos.Track}, true},
		{"/v1/t", Kind{Type: custos.Track}, true},
		{"/v1/identify", Kind{Type: custos.Identify}, true},
		{"/v1/i", Kind{Type: custos.Identify}, true},
		{"/v1/page", Kind{Type: custos.Page}, true},
		{"/v1/p", Kind{Type: custos.Page}, true},
		{"/v1/screen", Kind{Type: custos.Screen}, true},
		{"/v1/s", Kind{Type: custos.Screen}, true},
		{"/v1/group", Kind{Type: custos.Group}, true},
		{"/v1/g", Kind{Type: custos.Group}, true},
		{"/v1/alias", Kind{Type: custos.Alias}, true},
		{"/v1/a", Kind{Type: custos.Alias}, true},
		{"/v1/track/", Kind{Type: custos.Track}, true},
		{"/v1/tracks", Kind{}, false},
		{"/v1/track//", Kind{}, false},
		{"/V1/track", Kind{}, false},
		{"/v2/track", Kind{}, false},
		{"/v1/import", Kind{}, false},
		{"/v1", Kind{}, false},
		{"/", Kind{}, false},
		{"", Kind{}, false},
	}
	for _, tt := range tests {
		got, ok := PathKind(tt.path)
		if got != tt.want || ok != tt.ok {
			t.Errorf("PathKind(%q) = %+v, %v; want %+v, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}
