package tenants

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/totp"
)

// MinPasswordLength is the shortest console password accepted.
const MinPasswordLength = 12

var totpRecord = []byte("console/totp")

// checkUserName accepts 1 to 64 letters, digits and . _ @ - (the name
// is the user's actor in the audit chain).
func checkUserName(name string) error {
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return custos.Errorf(custos.Invalid, "user name must be 1 to 64 characters")
	}
	for _, c := range name {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !strings.ContainsRune("._@-", c) {
			return custos.Errorf(custos.Invalid, "user name %q may hold only letters, digits and . _ @ -", name)
		}
	}
	return nil
}

// ConsoleUser returns the tenant's console user of that name.
func ConsoleUser(t *custos.Tenant, name string) (custos.ConsoleUser, bool) {
	i := slices.IndexFunc(t.ConsoleUsers, func(u custos.ConsoleUser) bool { return u.Name == name })
	if i < 0 {
		return custos.ConsoleUser{}, false
	}
	return t.ConsoleUsers[i], true
}

// changeUsers applies change to a fresh copy of the tenant's users and
// stores the tenant.
func (r *Registry) changeUsers(ctx context.Context, id custos.TenantID, change func([]custos.ConsoleUser) ([]custos.ConsoleUser, error)) (*custos.Tenant, error) {
	r.usersMu.Lock()
	defer r.usersMu.Unlock()
	t, err := r.store.Tenant(ctx, id)
	if err != nil {
		return nil, err
	}
	users, err := change(slices.Clone(t.ConsoleUsers))
	if err != nil {
		return nil, err
	}
	t.ConsoleUsers = users
	if err := r.store.UpdateTenant(ctx, t); err != nil {
		return nil, err
	}
	return t, r.reload(ctx)
}

// AddConsoleUser lets a person into the tenant's console with a name and
// a password of at least MinPasswordLength characters, kept as a bcrypt
// hash.
func (r *Registry) AddConsoleUser(ctx context.Context, id custos.TenantID, name, password string, admin bool) error {
	if err := checkUserName(name); err != nil {
		return err
	}
	if utf8.RuneCountInString(password) < MinPasswordLength || len(password) > 72 {
		return custos.Errorf(custos.Invalid, "password must be %d to 72 bytes long", MinPasswordLength)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	_, err = r.changeUsers(ctx, id, func(us []custos.ConsoleUser) ([]custos.ConsoleUser, error) {
		if slices.ContainsFunc(us, func(u custos.ConsoleUser) bool { return u.Name == name }) {
			return nil, custos.Errorf(custos.Conflict, "there is already a console user %q", name)
		}
		return append(us, custos.ConsoleUser{Name: name, PasswordHash: hash, Admin: admin, CreatedAt: r.now().UTC()}), nil
	})
	return err
}

// RemoveConsoleUser removes a console user.
func (r *Registry) RemoveConsoleUser(ctx context.Context, id custos.TenantID, name string) error {
	_, err := r.changeUsers(ctx, id, func(us []custos.ConsoleUser) ([]custos.ConsoleUser, error) {
		i := slices.IndexFunc(us, func(u custos.ConsoleUser) bool { return u.Name == name })
		if i < 0 {
			return nil, custos.Errorf(custos.NotFound, "no console user %q", name)
		}
		return slices.Delete(us, i, i+1), nil
	})
	return err
}

// SetConsoleTOTP gives a user a second factor (secret sealed with the
// tenant key), or takes it away (secret nil).
func (r *Registry) SetConsoleTOTP(ctx context.Context, id custos.TenantID, name string, secret []byte) error {
	var sealed []byte
	if secret != nil {
		var err error
		if sealed, err = r.ring.SealTenant(id, totpRecord, secret); err != nil {
			return fmt.Errorf("seal totp secret: %w", err)
		}
	}
	_, err := r.changeUsers(ctx, id, func(us []custos.ConsoleUser) ([]custos.ConsoleUser, error) {
		i := slices.IndexFunc(us, func(u custos.ConsoleUser) bool { return u.Name == name })
		if i < 0 {
			return nil, custos.Errorf(custos.NotFound, "no console user %q", name)
		}
		us[i].TOTPSealed = sealed
		return us, nil
	})
	return err
}

// CheckConsoleUser checks a user's password and, when the user has a
// second factor, the TOTP code at now. It returns the user and the TOTP
// step the code matched (0 without a second factor). Every refusal is
// Unauthorized with the same message, whatever was wrong, except a
// missing code, which the sign-in form asks for.
func (r *Registry) CheckConsoleUser(t *custos.Tenant, name, password, code string, now time.Time) (custos.ConsoleUser, uint64, error) {
	refused := custos.Errorf(custos.Unauthorized, "that user name, password or code is not right")
	u, ok := ConsoleUser(t, name)
	if !ok {
		// The same work as for a known user, so timing tells nothing.
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return custos.ConsoleUser{}, 0, refused
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)) != nil {
		return custos.ConsoleUser{}, 0, refused
	}
	if len(u.TOTPSealed) == 0 {
		return u, 0, nil
	}
	if strings.TrimSpace(code) == "" {
		return custos.ConsoleUser{}, 0, custos.Errorf(custos.Unauthorized, "this user has a second factor: enter the 6-digit code of the authenticator app")
	}
	secret, err := r.ring.OpenTenant(t.ID, totpRecord, u.TOTPSealed)
	if err != nil {
		return custos.ConsoleUser{}, 0, fmt.Errorf("open totp secret: %w", err)
	}
	step, ok := totp.Check(secret, code, now)
	if !ok {
		return custos.ConsoleUser{}, 0, refused
	}
	return u, step, nil
}

// dummyHash is compared against when the user does not exist.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not a password of anyone"), bcrypt.DefaultCost)
	return h
})
