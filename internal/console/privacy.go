package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/mail"
	"github.com/custos-dev/custos/internal/rights"
)

// MaxLinkLifetime is the furthest in the future a signed link from the
// tenant's app may expire.
const MaxLinkLifetime = 24 * time.Hour

// privacyActor is who the audit chain names for what a data subject does
// in the privacy center.
const privacyActor = audit.ActorPrivacyCenter

// pcPage is what every privacy-center page shows around its content.
type pcPage struct {
	Title    string
	Lang     string
	TenantID string
	Name     string
	Logo     string
	Policy   string
	CSRF     string
	Langs    []langLink
	Error    string
	Flash    string
	Data     any
	cat      catalogue
}

// T returns the text of key in the page's language.
func (p pcPage) T(key string) string { return p.cat.text(key) }

type langLink struct {
	Code, Name string
	Current    bool
}

// tenantOf returns the tenant a privacy-center path names, or answers.
func (h *Handler) pcTenant(w http.ResponseWriter, r *http.Request) (*custos.Tenant, bool) {
	id, err := custos.ParseTenantID(r.PathValue("tenant"))
	var t *custos.Tenant
	ok := err == nil
	if ok {
		t, ok = h.d.Tenants.Get(id)
	}
	if !ok {
		http.Error(w, "No privacy center here: the address names no tenant.", http.StatusNotFound)
		return nil, false
	}
	if err := h.d.Tenants.Misdirected(t); err != nil {
		http.Error(w, custos.ErrorMessage(err), http.StatusMisdirectedRequest)
		return nil, false
	}
	return t, true
}

func pcBase(t *custos.Tenant) string { return "/privacy/" + t.ID.String() }

// newPCPage fills what every privacy-center page shows: the tenant's
// branding and the chosen language (?lang=, then the cookie, then
// Accept-Language).
func (h *Handler) newPCPage(w http.ResponseWriter, r *http.Request, t *custos.Tenant, titleKey string) pcPage {
	lang := ""
	if q := r.URL.Query().Get("lang"); catalogues[q] != nil {
		lang = q
		http.SetCookie(w, &http.Cookie{Name: "custos_lang", Value: q, Path: "/privacy", MaxAge: 365 * 86400,
			SameSite: http.SameSiteLaxMode, Secure: h.d.SecureCookies || r.TLS != nil, HttpOnly: true})
	} else if c, err := r.Cookie("custos_lang"); err == nil && catalogues[c.Value] != nil {
		lang = c.Value
	} else {
		lang = negotiate(r.Header.Get("Accept-Language"))
	}
	p := pcPage{Lang: lang, TenantID: t.ID.String(), Name: t.Name, cat: catalogues[lang]}
	if pc := t.Settings.PrivacyCenter; pc != nil {
		if pc.Name != "" {
			p.Name = pc.Name
		}
		p.Logo, p.Policy = pc.LogoURL, pc.PolicyURL
	}
	for _, code := range languages {
		p.Langs = append(p.Langs, langLink{Code: code, Name: catalogues[code]["language"], Current: code == lang})
	}
	p.Title = p.T(titleKey)
	return p
}

// privacyTheme is the tenant's colours as a style sheet (no inline style
// is allowed by the CSP). The text on each colour is black or white,
// whichever contrasts more; links take the accent colour only where it
// contrasts enough with the background.
func (h *Handler) privacyTheme(w http.ResponseWriter, r *http.Request) {
	t, ok := h.pcTenant(w, r)
	if !ok {
		return
	}
	accent, bg := "#0b4f9c", "#ffffff"
	if pc := t.Settings.PrivacyCenter; pc != nil {
		if custos.HexColor(pc.PrimaryColor) {
			accent = pc.PrimaryColor
		}
		if custos.HexColor(pc.BackgroundColor) {
			bg = pc.BackgroundColor
		}
	}
	fg := textOn(bg)
	link := accent
	if contrast(accent, bg) < 4.5 {
		link = fg
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	fmt.Fprintf(w, ":root { --accent: %s; --accent-fg: %s; --bg: %s; --fg: %s; --muted: %s; }\na { color: %s; }\n",
		accent, textOn(accent), bg, fg, fg, link)
}

// luminance is the relative luminance of a #rrggbb colour (WCAG 2.1).
func luminance(c string) float64 {
	ch := func(i int) float64 {
		v, _ := strconv.ParseUint(c[i:i+2], 16, 8)
		s := float64(v) / 255
		if s <= 0.03928 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(1) + 0.7152*ch(3) + 0.0722*ch(5)
}

// contrast is the WCAG contrast ratio of two colours.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// textOn returns black or white, whichever reads better on c.
func textOn(c string) string {
	if contrast(c, "#000000") >= contrast(c, "#ffffff") {
		return "#000000"
	}
	return "#ffffff"
}

// subjectUser is a signed-in data subject.
type subjectUser struct {
	s     *session
	t     *custos.Tenant
	token string
}

type subjectHandler func(w http.ResponseWriter, r *http.Request, u *subjectUser)

// subjectOf returns the signed-in subject of the request: nil if there
// is none, an error if the store could not tell.
func (h *Handler) subjectOf(r *http.Request, t *custos.Tenant) (*subjectUser, error) {
	c, err := r.Cookie(privacyCookie)
	if err != nil {
		return nil, nil
	}
	if tt, ok := tokenTenant(c.Value); !ok || tt != t.ID {
		return nil, nil
	}
	s, err := h.privacy.get(r.Context(), c.Value)
	if s == nil || err != nil {
		return nil, err
	}
	return &subjectUser{s: s, t: t, token: c.Value}, nil
}

// identityHolder names a data subject's sessions and links by a keyed
// hash of the identifier they proved: the store can end them together
// without holding the identifier.
func (h *Handler) identityHolder(t custos.TenantID, id custos.Identifier) (string, error) {
	id = id.Normalize()
	sum, err := h.d.Hasher.HashValue(t, "privacy-session", append([]byte{byte(id.Type)}, id.Value...))
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum[:]), nil
}

func (h *Handler) subject(next subjectHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := h.pcTenant(w, r)
		if !ok {
			return
		}
		u, err := h.subjectOf(r, t)
		if err != nil {
			h.pcFail(w, h.newPCPage(w, r, t, "error.title"), err)
			return
		}
		if u == nil {
			http.Redirect(w, r, pcBase(t), http.StatusSeeOther)
			return
		}
		next(w, r, u)
	})
}

func (h *Handler) subjectForm(next subjectHandler) http.Handler {
	return h.subject(func(w http.ResponseWriter, r *http.Request, u *subjectUser) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !sameToken(r.PostFormValue("csrf"), u.s.csrf) {
			p := h.newPCPage(w, r, u.t, "error.title")
			p.Error = p.T("error.csrf")
			h.render(w, http.StatusForbidden, "privacy_message", p)
			return
		}
		next(w, r, u)
	})
}

// preToken sets and returns the CSRF token of a form shown before sign-in.
func (h *Handler) preToken(w http.ResponseWriter, r *http.Request, t *custos.Tenant) string {
	token := randomToken(24)
	setCookie(w, r, h.d.SecureCookies, preCookie, token, pcBase(t), LinkTTL)
	return token
}

func checkPre(r *http.Request) bool {
	c, err := r.Cookie(preCookie)
	return err == nil && sameToken(r.PostFormValue("csrf"), c.Value)
}

func (h *Handler) privacyHome(w http.ResponseWriter, r *http.Request) {
	t, ok := h.pcTenant(w, r)
	if !ok {
		return
	}
	if u, err := h.subjectOf(r, t); err != nil {
		h.pcFail(w, h.newPCPage(w, r, t, "error.title"), err)
		return
	} else if u != nil {
		http.Redirect(w, r, pcBase(t)+"/me", http.StatusSeeOther)
		return
	}
	p := h.newPCPage(w, r, t, "signin.title")
	p.CSRF = h.preToken(w, r, t)
	h.render(w, http.StatusOK, "privacy_signin", p)
}

// privacySignin sends a one-time link to a known address. The answer is
// the same whether or not the address is known, and comes before the
// mail is sent, so neither its words nor its timing tell.
func (h *Handler) privacySignin(w http.ResponseWriter, r *http.Request) {
	t, ok := h.pcTenant(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	p := h.newPCPage(w, r, t, "signin.title")
	if !checkPre(r) {
		p.CSRF = h.preToken(w, r, t)
		p.Error = p.T("error.csrf")
		h.render(w, http.StatusForbidden, "privacy_signin", p)
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	at := strings.LastIndexByte(email, '@')
	if at < 1 || at == len(email)-1 || len(email) > 254 {
		p.CSRF = h.preToken(w, r, t)
		p.Error = p.T("signin.bad_email")
		h.render(w, http.StatusBadRequest, "privacy_signin", p)
		return
	}
	id := custos.Identifier{Type: custos.Email, Value: email}.Normalize()
	// Known address or not, the same limits are read and written, so the
	// answer's timing does not tell.
	allowed, err := h.linkByAddr.allow(r.Context(), custos.OperatorChain, clientIP(r))
	if allowed && err == nil {
		allowed, err = h.linkLimit.allow(r.Context(), t.ID, id.Value)
	}
	if err != nil {
		p.CSRF = h.preToken(w, r, t)
		h.pcFail(w, p, err)
		return
	}
	if !allowed {
		p.CSRF = h.preToken(w, r, t)
		p.Error = p.T("signin.too_many")
		h.render(w, http.StatusTooManyRequests, "privacy_signin", p)
		return
	}
	if _, err := h.d.Subjects.Find(r.Context(), t.ID, id); err == nil {
		h.sendLink(t, id, p)
	} else if custos.ErrorCode(err) != custos.NotFound {
		h.d.Log.Error("privacy center: look up e-mail", "tenant", t.ID, "err", err)
	}
	p.Flash = p.T("signin.sent")
	h.render(w, http.StatusOK, "privacy_message", p)
}

// sendLink mails a one-time sign-in link in the background.
func (h *Handler) sendLink(t *custos.Tenant, id custos.Identifier, p pcPage) {
	m := t.Settings.SMTP
	if m == nil {
		h.d.Log.Warn("privacy center: a known address asked for a sign-in link, but the tenant has no SMTP settings", "tenant", t.ID)
		return
	}
	password, err := h.d.Tenants.SMTPPassword(t)
	if err != nil {
		h.d.Log.Error("privacy center: open SMTP password", "tenant", t.ID, "err", err)
		return
	}
	cfg := mail.Config{Host: m.Host, Port: m.Port, Username: m.Username, Password: password, TLS: m.TLS, From: m.From, RootCAs: h.d.MailRootCAs}
	// The link is stored in the background too: the answer must not wait
	// for a write only a known address makes.
	h.mail.Add(1)
	go func() {
		defer h.mail.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		holder, err := h.identityHolder(t.ID, id)
		if err != nil {
			h.d.Log.Error("privacy center: name a sign-in link", "tenant", t.ID, "err", err)
			return
		}
		token, err := h.links.issue(ctx, t.ID, id, holder)
		if err != nil {
			h.d.Log.Error("privacy center: store a sign-in link", "tenant", t.ID, "err", err)
			return
		}
		link := strings.TrimRight(h.d.PublicURL, "/") + pcBase(t) + "/enter?token=" + url.QueryEscape(token) + "&lang=" + p.Lang
		msg := mail.Message{To: id.Value, Subject: fmt.Sprintf(p.T("mail.subject"), p.Name),
			Text: fmt.Sprintf(p.T("mail.body"), p.Name, link, int(LinkTTL/time.Minute))}
		if err := mail.Send(ctx, cfg, msg); err != nil {
			h.d.Log.Warn("privacy center: send sign-in link", "tenant", t.ID, "err", err)
		}
	}()
}

// AppLinkSignature is the signature of a sign-in link the tenant's app
// makes for a user: the hex HMAC-SHA-256, keyed with the tenant's
// identity-verification secret, of "privacy-center\n" + user id + "\n" +
// the expiry in Unix seconds.
func AppLinkSignature(secret, userID string, expires int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "privacy-center\n%s\n%d", userID, expires)
	return hex.EncodeToString(mac.Sum(nil))
}

// appLink checks a signed link: it returns the identity, or the catalogue
// key of what is wrong with it.
func (h *Handler) appLink(t *custos.Tenant, v url.Values) (custos.Identifier, string) {
	uid, sig := v.Get("user_id"), v.Get("signature")
	exp, err := strconv.ParseInt(v.Get("expires"), 10, 64)
	if uid == "" || sig == "" || err != nil {
		return custos.Identifier{}, "enter.invalid"
	}
	secret, err := h.d.Tenants.IdentitySecret(t)
	if err != nil || !hmac.Equal([]byte(AppLinkSignature(secret, uid, exp)), []byte(strings.ToLower(sig))) {
		return custos.Identifier{}, "enter.invalid"
	}
	now := h.d.Now()
	if now.Unix() > exp {
		return custos.Identifier{}, "enter.expired"
	}
	if time.Unix(exp, 0).Sub(now) > MaxLinkLifetime {
		return custos.Identifier{}, "enter.invalid"
	}
	return custos.Identifier{Type: custos.UserID, Value: uid}, ""
}

type enterData struct {
	Token, UserID, Expires, Signature string
}

// privacyEnterPage shows the link's "continue" button: following a link
// (a mail scanner does) changes nothing; the POST signs in.
func (h *Handler) privacyEnterPage(w http.ResponseWriter, r *http.Request) {
	t, ok := h.pcTenant(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	p := h.newPCPage(w, r, t, "enter.title")
	if q.Get("token") == "" {
		if _, problem := h.appLink(t, q); problem != "" {
			p.Error = p.T(problem)
			p.Data = enterData{}
			h.render(w, http.StatusForbidden, "privacy_message", p)
			return
		}
	} else if ok, err := h.links.valid(r.Context(), t.ID, q.Get("token")); err != nil {
		h.pcFail(w, p, err)
		return
	} else if !ok {
		p.Error = p.T("enter.expired")
		h.render(w, http.StatusForbidden, "privacy_message", p)
		return
	}
	p.CSRF = h.preToken(w, r, t)
	p.Data = enterData{Token: q.Get("token"), UserID: q.Get("user_id"), Expires: q.Get("expires"), Signature: q.Get("signature")}
	h.render(w, http.StatusOK, "privacy_enter", p)
}

func (h *Handler) privacyEnter(w http.ResponseWriter, r *http.Request) {
	t, ok := h.pcTenant(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	p := h.newPCPage(w, r, t, "enter.title")
	if !checkPre(r) {
		p.Error = p.T("error.csrf")
		h.render(w, http.StatusForbidden, "privacy_message", p)
		return
	}
	var id custos.Identifier
	via := "email-link"
	if token := r.PostFormValue("token"); token != "" {
		var ok bool
		var err error
		if id, ok, err = h.links.redeem(r.Context(), t.ID, token); err != nil {
			h.pcFail(w, p, err)
			return
		} else if !ok {
			p.Error = p.T("enter.expired")
			h.render(w, http.StatusForbidden, "privacy_message", p)
			return
		}
	} else {
		var problem string
		if id, problem = h.appLink(t, r.PostForm); problem != "" {
			p.Error = p.T(problem)
			h.render(w, http.StatusForbidden, "privacy_message", p)
			return
		}
		via = "app-link"
	}
	holder, err := h.identityHolder(t.ID, id)
	if err != nil {
		h.pcFail(w, p, err)
		return
	}
	s := &session{tenant: t.ID, identity: id, via: via, holder: holder}
	token, err := h.privacy.start(r.Context(), s)
	if err != nil {
		h.pcFail(w, p, err)
		return
	}
	if err := h.recordSubject(r.Context(), t, id, "privacy.signin", map[string]string{"via": via}); err != nil {
		if e := h.privacy.end(r.Context(), token); e != nil {
			h.d.Log.Error("privacy center: end unaudited session", "tenant", t.ID, "err", e)
		}
		h.d.Log.Error("privacy center: audit sign-in", "tenant", t.ID, "err", err)
		p.Error = p.T("error.internal")
		h.render(w, http.StatusInternalServerError, "privacy_message", p)
		return
	}
	setCookie(w, r, h.d.SecureCookies, preCookie, "", pcBase(t), -1)
	setCookie(w, r, h.d.SecureCookies, privacyCookie, token, pcBase(t), PrivacySessionTTL)
	http.Redirect(w, r, pcBase(t)+"/me", http.StatusSeeOther)
}

// recordSubject audits an action of the privacy center under the
// subject's pseudonym (none if nothing is held about it yet).
func (h *Handler) recordSubject(ctx context.Context, t *custos.Tenant, id custos.Identifier, action string, details any) error {
	e := audit.Entry{Actor: privacyActor, Action: action, Details: details}
	s, err := h.d.Subjects.Find(ctx, t.ID, id)
	switch {
	case err == nil:
		if e.Subject, err = h.d.Subjects.Pseudonym(t.ID, s); err != nil {
			return err
		}
	case custos.ErrorCode(err) != custos.NotFound:
		return err
	}
	return h.record(ctx, t.ID, e)
}

// eventCount is how many events of one kind are held.
type eventCount struct {
	Kind        string
	Count       int
	First, Last time.Time
}

type consentCell struct {
	Name    string
	Channel string
	Granted bool
}

type consentRow struct {
	Purpose custos.Purpose
	Cells   []consentCell
}

type meData struct {
	Known       bool
	Identifiers map[string][]string
	Traits      map[string]string
	Events      []eventCount
	EventsTotal int
	Purposes    []custos.Purpose
	Recipients  []string
	Retention   int
	Channels    []string
	Consent     []consentRow
	Base        string
}

// maxSummarised bounds the events read to summarise what is held.
const maxSummarised = 100000

func (h *Handler) privacyMe(w http.ResponseWriter, r *http.Request, u *subjectUser) {
	p := h.newPCPage(w, r, u.t, "me.title")
	p.CSRF = u.s.csrf
	switch r.URL.Query().Get("done") {
	case "suppress", "object", "consent":
		p.Flash = p.T("done." + r.URL.Query().Get("done"))
	}
	d := meData{Purposes: u.t.Settings.EffectivePurposes(), Retention: u.t.Settings.RetentionDays(), Channels: custos.Channels, Base: pcBase(u.t)}
	ctx := r.Context()
	var history []custos.ConsentRecord
	s, err := h.d.Subjects.Find(ctx, u.t.ID, u.s.identity)
	switch {
	case err == nil:
		d.Known = true
		prof, err := h.d.Subjects.Profile(ctx, u.t.ID, s)
		if err != nil {
			h.pcFail(w, p, err)
			return
		}
		d.Identifiers = prof.Identifiers
		d.Traits = map[string]string{}
		for k, v := range prof.Traits {
			d.Traits[k] = strings.Trim(string(v), `"`)
		}
		kinds := map[string]*eventCount{}
		errStop := fmt.Errorf("enough")
		err = h.d.Subjects.EachEvent(ctx, u.t.ID, s, func(e custos.Event) error {
			k := string(e.Type)
			if e.Event != "" {
				k += ": " + e.Event
			}
			c := kinds[k]
			if c == nil {
				c = &eventCount{Kind: k, First: e.Timestamp}
				kinds[k] = c
			}
			c.Count++
			if e.Timestamp.Before(c.First) {
				c.First = e.Timestamp
			}
			if e.Timestamp.After(c.Last) {
				c.Last = e.Timestamp
			}
			d.EventsTotal++
			if d.EventsTotal >= maxSummarised {
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			h.pcFail(w, p, err)
			return
		}
		for _, c := range kinds {
			d.Events = append(d.Events, *c)
		}
		slices.SortFunc(d.Events, func(a, b eventCount) int { return b.Count - a.Count })
		if history, err = h.d.Consents.History(ctx, u.t.ID, s); err != nil {
			h.pcFail(w, p, err)
			return
		}
		if err := h.recordSubject(ctx, u.t, u.s.identity, "privacy.view", nil); err != nil {
			h.pcFail(w, p, err)
			return
		}
	case custos.ErrorCode(err) != custos.NotFound:
		h.pcFail(w, p, err)
		return
	}
	if h.d.Recipients != nil {
		recs, err := h.d.Recipients.Recipients(ctx, u.t.ID)
		if err != nil {
			h.pcFail(w, p, err)
			return
		}
		for _, rc := range recs {
			d.Recipients = append(d.Recipients, rc.Name)
		}
	}
	st := consent.NewState(history)
	for _, pu := range d.Purposes {
		if pu.LegalBasis != "consent" {
			continue
		}
		row := consentRow{Purpose: pu}
		for _, ch := range custos.Channels {
			g, _ := st.Lookup(pu.Name, ch)
			row.Cells = append(row.Cells, consentCell{Name: "c." + pu.Name + "." + ch, Channel: ch, Granted: g})
		}
		d.Consent = append(d.Consent, row)
	}
	p.Data = d
	h.render(w, http.StatusOK, "privacy_me", p)
}

func (h *Handler) pcFail(w http.ResponseWriter, p pcPage, err error) {
	status := statusOf(err)
	if status >= 500 {
		h.d.Log.Error("privacy center", "tenant", p.TenantID, "err", err)
		p.Error = p.T("error.internal")
	} else {
		p.Error = custos.ErrorMessage(err)
	}
	h.render(w, status, "privacy_message", p)
}

// create files a request for the signed-in subject.
func (h *Handler) create(r *http.Request, u *subjectUser, typ custos.RequestType) (*custos.Request, error) {
	return h.d.Requests.Create(r.Context(), u.t.ID, rights.Input{Type: typ, Identity: u.s.identity,
		Source: "privacy_center", Actor: privacyActor})
}

// privacyDownload files a portability request and streams its ZIP.
func (h *Handler) privacyDownload(w http.ResponseWriter, r *http.Request, u *subjectUser) {
	p := h.newPCPage(w, r, u.t, "me.title")
	req, err := h.create(r, u, custos.Portability)
	if err != nil {
		h.pcFail(w, p, err)
		return
	}
	started := false
	err = h.d.Requests.Result(r.Context(), u.t.ID, req.ID, "zip", w, func(ct, filename string) {
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
		started = true
	})
	if err != nil {
		if started {
			h.d.Log.Error("privacy center: export stream failed", "tenant", u.t.ID, "err", err)
			return
		}
		h.pcFail(w, p, err)
	}
}

func (h *Handler) privacyEraseConfirm(w http.ResponseWriter, r *http.Request, u *subjectUser) {
	p := h.newPCPage(w, r, u.t, "erase.title")
	p.CSRF = u.s.csrf
	p.Data = meData{Base: pcBase(u.t)}
	h.render(w, http.StatusOK, "privacy_erase", p)
}

func (h *Handler) privacyErase(w http.ResponseWriter, r *http.Request, u *subjectUser) {
	p := h.newPCPage(w, r, u.t, "erase.title")
	if r.PostFormValue("confirm") != "yes" {
		p.CSRF = u.s.csrf
		p.Data = meData{Base: pcBase(u.t)}
		p.Error = p.T("erase.unconfirmed")
		h.render(w, http.StatusBadRequest, "privacy_erase", p)
		return
	}
	req, err := h.create(r, u, custos.Erasure)
	if err != nil {
		h.pcFail(w, p, err)
		return
	}
	// Nothing is left to show: every session of the identity ends, and
	// every sign-in link not used yet.
	for _, ss := range []*sessions{h.privacy, h.links.ss} {
		if err := ss.endHolder(r.Context(), u.t.ID, u.s.holder); err != nil {
			h.d.Log.Error("privacy center: end the erased identity's sessions", "tenant", u.t.ID, "err", err)
		}
	}
	setCookie(w, r, h.d.SecureCookies, privacyCookie, "", pcBase(u.t), -1)
	p.Flash = fmt.Sprintf(p.T("erase.done"), req.ID)
	h.render(w, http.StatusOK, "privacy_message", p)
}

// privacyFlag files a suppress or object request (the path's last part).
func (h *Handler) privacyFlag(w http.ResponseWriter, r *http.Request, u *subjectUser) {
	typ := custos.RequestType(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
	if _, err := h.create(r, u, typ); err != nil {
		h.pcFail(w, h.newPCPage(w, r, u.t, "me.title"), err)
		return
	}
	http.Redirect(w, r, pcBase(u.t)+"/me?done="+string(typ), http.StatusSeeOther)
}

// privacyConsent records a grant or withdrawal for each purpose and
// channel whose box changed.
func (h *Handler) privacyConsent(w http.ResponseWriter, r *http.Request, u *subjectUser) {
	ctx := r.Context()
	p := h.newPCPage(w, r, u.t, "me.title")
	var history []custos.ConsentRecord
	s, err := h.d.Subjects.Find(ctx, u.t.ID, u.s.identity)
	if err == nil {
		history, err = h.d.Consents.History(ctx, u.t.ID, s)
	}
	if err != nil && custos.ErrorCode(err) != custos.NotFound {
		h.pcFail(w, p, err)
		return
	}
	st := consent.NewState(history)
	for _, pu := range u.t.Settings.EffectivePurposes() {
		if pu.LegalBasis != "consent" {
			continue
		}
		for _, ch := range custos.Channels {
			want := r.PostFormValue("c."+pu.Name+"."+ch) == "on"
			if g, _ := st.Lookup(pu.Name, ch); g == want {
				continue
			}
			// The recorder checks, appends and audits the choice.
			in := consent.Input{Identity: u.s.identity, Purpose: pu.Name, Channel: ch, Granted: &want,
				Source: custos.SourcePrivacyCenter, IP: clientIP(r), UserAgent: truncate(r.UserAgent(), consent.MaxUserAgent),
				Actor: privacyActor}
			if _, err := h.d.Recorder.Record(ctx, u.t, in); err != nil {
				h.pcFail(w, p, err)
				return
			}
		}
	}
	http.Redirect(w, r, pcBase(u.t)+"/me?done=consent", http.StatusSeeOther)
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

func (h *Handler) privacySignout(w http.ResponseWriter, r *http.Request, u *subjectUser) {
	if err := h.privacy.end(r.Context(), u.token); err != nil {
		h.pcFail(w, h.newPCPage(w, r, u.t, "error.title"), err)
		return
	}
	setCookie(w, r, h.d.SecureCookies, privacyCookie, "", pcBase(u.t), -1)
	http.Redirect(w, r, pcBase(u.t), http.StatusSeeOther)
}
