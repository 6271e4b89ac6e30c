package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestRecipientCountBound: a tenant may have 100 recipients; the 101st is
// refused with a 400 naming the limit, and a deletion makes room.
func TestRecipientCountBound(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "many-recipients")
	add := func(i int) response {
		return srv.do(t, "POST", "/api/v1/recipients", []byte(fmt.Sprintf(`{"name":"r%d","url":"https://r%d.example/hook","secret":"recipient-secret-0123456","region":"eu"}`, i, i)),
			"Authorization", "Bearer "+tn.SecretKey)
	}
	for i := range 100 {
		if r := add(i); r.status != 201 {
			t.Fatalf("recipient %d: %d %s", i, r.status, r.body)
		}
	}
	r := add(100)
	if r.status != 400 || !strings.Contains(r.errorMessage(), "limit 100") {
		t.Fatalf("recipient 101: %d %s, want 400 naming the limit of 100", r.status, r.body)
	}
}
