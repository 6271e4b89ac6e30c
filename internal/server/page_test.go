package server

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/custos-dev/custos"
)

func TestReadPage(t *testing.T) {
	req := func(q string) pageQuery {
		t.Helper()
		p, err := readPage(httptest.NewRequest("GET", "/x?"+q, nil), "things")
		if err != nil {
			t.Fatalf("readPage(%q) = %v", q, err)
		}
		return p
	}
	if p := req(""); p.Limit != defaultLimit || p.Position != "" {
		t.Errorf("readPage() = %+v; want the default limit, no position", p)
	}
	p := req("limit=7")
	if p.Limit != 7 {
		t.Errorf("limit=7: %+v", p)
	}
	if back := req("cursor=" + url.QueryEscape(p.cursor("pos-1"))); back.Position != "pos-1" {
		t.Errorf("cursor round trip: position %q, want pos-1", back.Position)
	}
	other := pageQuery{list: "others"}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=!!!", "cursor=" + url.QueryEscape(other.cursor("pos-1")), "cursor=bm9wZQ"} {
		_, err := readPage(httptest.NewRequest("GET", "/x?"+q, nil), "things")
		if custos.ErrorCode(err) != custos.Invalid {
			t.Errorf("readPage(%q) = %v; want Invalid", q, err)
		}
	}
}

func TestPageSlice(t *testing.T) {
	items := []string{"a", "b", "c", "d", "e"}
	key := func(s string) string { return s }
	walk := func(items []string, limit int) []string {
		var all []string
		p := pageQuery{list: "l", Limit: limit}
		for page := 0; page < 10; page++ {
			got, next := pageSlice(items, p, key)
			all = append(all, got...)
			if next == "" {
				return all
			}
			r, err := readPage(httptest.NewRequest("GET", "/?limit="+fmt.Sprint(limit)+"&cursor="+url.QueryEscape(next), nil), "l")
			if err != nil {
				t.Fatalf("readPage(next) = %v", err)
			}
			p = r
		}
		t.Fatalf("pageSlice did not end")
		return nil
	}
	for _, limit := range []int{1, 2, 3, 5, 6} {
		if got := walk(items, limit); !slices.Equal(got, items) {
			t.Errorf("limit %d: %v, want %v", limit, got, items)
		}
	}
	// The item the cursor continues from is deleted between pages: the
	// next page starts where it stood, nothing repeated or skipped.
	first, next := pageSlice(items, pageQuery{list: "l", Limit: 2}, key)
	r, err := readPage(httptest.NewRequest("GET", "/?limit=2&cursor="+url.QueryEscape(next), nil), "l")
	if err != nil || strings.Join(first, "") != "ab" {
		t.Fatalf("first page %v, cursor %v", first, err)
	}
	rest, _ := pageSlice([]string{"a", "c", "d", "e"}, r, key)
	if strings.Join(rest, "") != "cd" {
		t.Errorf("after deleting the cursor's item: %v, want [c d]", rest)
	}
}
