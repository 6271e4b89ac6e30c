package campaign

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"text/template/parse"

	"github.com/custos-dev/custos"
)

// Limits on templates and what they render.
const (
	maxSubjectLen  = 1000
	maxBodyLen     = 64 << 10
	maxRenderedLen = 256 << 10
)

// templates are a campaign's message, parsed once. E-mail bodies are
// html/template (every trait escaped for the HTML context it lands in);
// subjects, plain-text parts and webhook values are text/template, and a
// webhook message is JSON-encoded after rendering, so a trait can never
// leave the string it is rendered into.
type templates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template // nil: derived from the HTML body
	html    *htmltemplate.Template // e-mail only
	body    *texttemplate.Template // webhook only
}

// orEmpty is appended to every text action, so a missing trait renders
// as nothing rather than "<no value>" (html/template already does so).
func orEmpty(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func parseText(field, src string) (*texttemplate.Template, error) {
	t, err := texttemplate.New(field).Funcs(texttemplate.FuncMap{"orEmpty": orEmpty}).Parse(src)
	if err != nil {
		return nil, custos.Errorf(custos.Invalid, "%s: %s", field, templateError(err))
	}
	for _, tr := range t.Templates() {
		wrapActions(tr.Tree.Root, tr.Tree)
	}
	return t, nil
}

// wrapActions pipes every printing action into orEmpty.
func wrapActions(n parse.Node, tr *parse.Tree) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			wrapActions(c, tr)
		}
	case *parse.ActionNode:
		if len(x.Pipe.Decl) == 0 {
			id := parse.NewIdentifier("orEmpty").SetTree(tr).SetPos(x.Pos)
			x.Pipe.Cmds = append(x.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: x.Pos, Args: []parse.Node{id}})
		}
	case *parse.IfNode:
		wrapActions(x.List, tr)
		wrapActions(x.ElseList, tr)
	case *parse.RangeNode:
		wrapActions(x.List, tr)
		wrapActions(x.ElseList, tr)
	case *parse.WithNode:
		wrapActions(x.List, tr)
		wrapActions(x.ElseList, tr)
	}
}

// templateError strips the template's name from a parse error; the field
// name says where it is.
func templateError(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": "); i >= 0 && strings.HasPrefix(s, "template: ") {
		return "template " + s[i+2:]
	}
	return s
}

// parseTemplates checks and parses a message for a channel.
func parseTemplates(channel string, m custos.CampaignMessage) (*templates, error) {
	switch {
	case strings.TrimSpace(m.Body) == "":
		return nil, custos.Errorf(custos.Invalid, "message.body is required")
	case len(m.Body) > maxBodyLen:
		return nil, custos.Errorf(custos.Invalid, "message.body is longer than %d bytes", maxBodyLen)
	case len(m.Text) > maxBodyLen:
		return nil, custos.Errorf(custos.Invalid, "message.text is longer than %d bytes", maxBodyLen)
	case len(m.Subject) > maxSubjectLen:
		return nil, custos.Errorf(custos.Invalid, "message.subject is longer than %d bytes", maxSubjectLen)
	case channel == custos.ChannelEmail && strings.TrimSpace(m.Subject) == "":
		return nil, custos.Errorf(custos.Invalid, "message.subject is required for e-mail")
	}
	var ts templates
	var err error
	if ts.subject, err = parseText("message.subject", m.Subject); err != nil {
		return nil, err
	}
	if channel != custos.ChannelEmail {
		if ts.body, err = parseText("message.body", m.Body); err != nil {
			return nil, err
		}
		return &ts, nil
	}
	if ts.html, err = htmltemplate.New("message.body").Parse(m.Body); err != nil {
		return nil, custos.Errorf(custos.Invalid, "message.body: %s", templateError(err))
	}
	if m.Text != "" {
		if ts.text, err = parseText("message.text", m.Text); err != nil {
			return nil, err
		}
	}
	// html/template reports context errors (an action inside a tag name,
	// say) only when it first executes: do it now, on no traits.
	if _, err := ts.render(map[string]any{"traits": map[string]any{}, "subject_id": "", "unsubscribe_url": ""}); err != nil {
		return nil, custos.Errorf(custos.Invalid, "message: %v", err)
	}
	return &ts, nil
}

// rendered is one recipient's message.
type rendered struct {
	Subject string `json:"subject"`
	Body    string `json:"body"`           // HTML for e-mail, text otherwise
	Text    string `json:"text,omitempty"` // e-mail's plain-text part
}

// limitedBuffer fails a render that grows past maxRenderedLen.
type limitedBuffer struct{ bytes.Buffer }

var errTooLong = errors.New("rendered message is longer than 256 KiB")

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxRenderedLen {
		return 0, errTooLong
	}
	return b.Buffer.Write(p)
}

func execText(t *texttemplate.Template, data any) (string, error) {
	var b limitedBuffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("%s: %s", t.Name(), templateError(err))
	}
	return b.String(), nil
}

// render renders the message for data: {"traits": {...}, "subject_id",
// "unsubscribe_url"}.
func (ts *templates) render(data map[string]any) (rendered, error) {
	var r rendered
	var err error
	if r.Subject, err = execText(ts.subject, data); err != nil {
		return r, err
	}
	// A subject is one header line: no trait may start another.
	r.Subject = strings.Join(strings.Fields(r.Subject), " ")
	if ts.body != nil {
		r.Body, err = execText(ts.body, data)
		return r, err
	}
	var b limitedBuffer
	if err := ts.html.Execute(&b, data); err != nil {
		return r, fmt.Errorf("message.body: %s", templateError(err))
	}
	r.Body = b.String()
	if ts.text != nil {
		r.Text, err = execText(ts.text, data)
	} else {
		r.Text = stripTags(r.Body)
	}
	return r, err
}

// stripTags makes a rough plain-text part of an HTML body: tags removed,
// the entities html/template writes decoded, blank runs collapsed.
func stripTags(h string) string {
	var b strings.Builder
	in := false
	for _, c := range h {
		switch {
		case c == '<':
			in = true
		case c == '>' && in:
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(c)
		}
	}
	s := htmlUnescaper.Replace(b.String())
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

var htmlUnescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&quot;", `"`, "&nbsp;", " ")

// templateData is what a template sees of a recipient.
func templateData(p *custos.Profile, unsubscribeURL string) map[string]any {
	traits := make(map[string]any, len(p.Traits))
	for k, v := range p.Traits {
		var x any
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		if d.Decode(&x) == nil {
			traits[k] = x
		}
	}
	return map[string]any{"traits": traits, "subject_id": p.Subject.String(), "unsubscribe_url": unsubscribeURL}
}
