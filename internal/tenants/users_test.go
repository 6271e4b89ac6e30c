package tenants_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/tenants"
	"github.com/custos-dev/custos/internal/testenv"
	"github.com/custos-dev/custos/internal/totp"
)

func TestConsoleUsers(t *testing.T) {
	ctx := context.Background()
	master := make([]byte, 32)
	rand.Read(master)
	dir := t.TempDir()
	st := testenv.Open(t, dir, master, pebble.Options{})
	reg, err := tenants.Load(ctx, st.Store, st.Ring, "eu", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := reg.Create(ctx, "a", "eu")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := reg.Create(ctx, "b", "eu")
	if err != nil {
		t.Fatal(err)
	}
	const pw = "a password long enough"
	for _, tc := range []struct {
		name, user, password string
		code                 custos.Code
	}{
		{"short password", "ada", "short", custos.Invalid},
		{"bad name", "ada lovelace", pw, custos.Invalid},
		{"empty name", "", pw, custos.Invalid},
		{"ok", "ada", pw, ""},
		{"same name again", "ada", pw, custos.Conflict},
	} {
		err := reg.AddConsoleUser(ctx, a.ID, tc.user, tc.password, false)
		if (tc.code == "" && err != nil) || (tc.code != "" && custos.ErrorCode(err) != tc.code) {
			t.Errorf("%s: AddConsoleUser(%q) = %v, want code %q", tc.name, tc.user, err, tc.code)
		}
	}
	// The same name in another tenant is another user.
	if err := reg.AddConsoleUser(ctx, b.ID, "ada", pw+"!", true); err != nil {
		t.Fatal(err)
	}
	ta, _ := reg.Get(a.ID)
	u, ok := tenants.ConsoleUser(ta, "ada")
	if !ok || bytes.Contains(u.PasswordHash, []byte(pw)) || !bytes.HasPrefix(u.PasswordHash, []byte("$2")) {
		t.Fatalf("stored user %+v; want a bcrypt hash", u)
	}
	now := time.Unix(1_800_000_000, 0)
	if _, _, err := reg.CheckConsoleUser(ta, "ada", pw, "", now); err != nil {
		t.Errorf("right password: %v", err)
	}
	tb, _ := reg.Get(b.ID)
	for _, tc := range []struct{ name, tenantUser, password string }{
		{"wrong password", "ada", pw + "x"},
		{"unknown user", "bob", pw},
	} {
		if _, _, err := reg.CheckConsoleUser(ta, tc.tenantUser, tc.password, "", now); custos.ErrorCode(err) != custos.Unauthorized {
			t.Errorf("%s: %v, want Unauthorized", tc.name, err)
		}
	}
	if _, _, err := reg.CheckConsoleUser(tb, "ada", pw, "", now); custos.ErrorCode(err) != custos.Unauthorized {
		t.Errorf("tenant a's password opened tenant b's ada: %v", err)
	}

	// A second factor: sealed at rest, then required.
	secret := totp.NewSecret()
	if err := reg.SetConsoleTOTP(ctx, a.ID, "ada", secret); err != nil {
		t.Fatal(err)
	}
	ta, _ = reg.Get(a.ID)
	u, _ = tenants.ConsoleUser(ta, "ada")
	if len(u.TOTPSealed) == 0 || bytes.Contains(u.TOTPSealed, secret) {
		t.Errorf("TOTP secret stored as %x; want it sealed", u.TOTPSealed)
	}
	if _, _, err := reg.CheckConsoleUser(ta, "ada", pw, "", now); custos.ErrorCode(err) != custos.Unauthorized {
		t.Errorf("without the code: %v, want Unauthorized", err)
	}
	if _, _, err := reg.CheckConsoleUser(ta, "ada", pw, "000000", now); custos.ErrorCode(err) != custos.Unauthorized && totp.At(secret, totp.Counter(now)) != "000000" {
		t.Errorf("a wrong code: %v, want Unauthorized", err)
	}
	code := totp.At(secret, totp.Counter(now))
	if _, step, err := reg.CheckConsoleUser(ta, "ada", pw, code, now); err != nil || step != totp.Counter(now) {
		t.Errorf("the right code: step %d, %v", step, err)
	}
	if _, _, err := reg.CheckConsoleUser(ta, "ada", pw+"x", code, now); custos.ErrorCode(err) != custos.Unauthorized {
		t.Errorf("the right code with a wrong password: %v", err)
	}

	// The users survive a reopening of the store.
	st.Store.Close()
	st.Keys.Close()
	st = testenv.Open(t, dir, master, pebble.Options{})
	if reg, err = tenants.Load(ctx, st.Store, st.Ring, "eu", time.Now); err != nil {
		t.Fatal(err)
	}
	ta, _ = reg.Get(a.ID)
	if _, _, err := reg.CheckConsoleUser(ta, "ada", pw, code, now); err != nil {
		t.Errorf("after reopening: %v", err)
	}
	if err := reg.RemoveConsoleUser(ctx, a.ID, "ada"); err != nil {
		t.Fatal(err)
	}
	if err := reg.RemoveConsoleUser(ctx, a.ID, "ada"); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("removing twice: %v, want NotFound", err)
	}
	ta, _ = reg.Get(a.ID)
	if _, _, err := reg.CheckConsoleUser(ta, "ada", pw, code, now); custos.ErrorCode(err) != custos.Unauthorized {
		t.Errorf("a removed user signed in: %v", err)
	}
}
