package server

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/custos-dev/custos"
)

// Every list of the API pages the same way: ?limit= (1 to maxLimit,
// defaultLimit when left out) and ?cursor=, the opaque next_cursor of the
// page before. next_cursor is "" on the last page.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// pageQuery is the page a client asked for: at most Limit items after
// Position, the list's own position (decoded from the cursor; "" for the
// first page).
type pageQuery struct {
	list     string
	Limit    int
	Position string
}

// readPage reads ?limit= and ?cursor= for the list named list; a cursor
// of another list is refused.
func readPage(r *http.Request, list string) (pageQuery, error) {
	q := r.URL.Query()
	p := pageQuery{list: list, Limit: defaultLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return p, custos.Errorf(custos.Invalid, "limit must be a whole number from 1 to %d", maxLimit)
		}
		p.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		pos, ok := strings.CutPrefix(string(raw), list+"\x00")
		if err != nil || !ok || pos == "" {
			return p, custos.Errorf(custos.Invalid, "cursor is not a next_cursor this list (%s) issued; leave it out to start from the first page", list)
		}
		p.Position = pos
	}
	return p, nil
}

// cursor is the opaque next_cursor that continues the list after position.
func (p pageQuery) cursor(position string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(p.list + "\x00" + position))
}

// pageSlice cuts one page out of a whole list, in its order. The position
// is the key of the last item shown and its index, so the next page starts
// after that item or, if it has gone since, where it stood.
func pageSlice[T any](items []T, p pageQuery, key func(T) string) ([]T, string) {
	start := 0
	if p.Position != "" {
		k, idx, _ := strings.Cut(p.Position, "\x00")
		start = -1
		for i, it := range items {
			if key(it) == k {
				start = i + 1
				break
			}
		}
		if start < 0 {
			n, err := strconv.Atoi(idx)
			start = min(max(n, 0), len(items))
			if err != nil {
				start = len(items)
			}
		}
	}
	end := min(start+p.Limit, len(items))
	page := items[start:end]
	if end == len(items) || len(page) == 0 {
		return page, ""
	}
	return page, p.cursor(key(page[len(page)-1]) + "\x00" + strconv.Itoa(end-1))
}

// listPage is the answer of every list: its items under the list's name,
// and next_cursor.
func listPage(name string, items any, next string) map[string]any {
	return map[string]any{name: items, "next_cursor": next}
}
