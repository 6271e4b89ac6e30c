package processing

import (
	"html/template"
	"io"

	"github.com/custos-dev/custos/internal/urlpolicy"
)

// hostOf returns the host of a URL: the record names where data goes,
// not the full address with its paths and tokens.
func hostOf(s string) string {
	u, err := urlpolicy.Policy{AllowUserInfo: true}.Check("url", s)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Host
}

var page = template.Must(template.New("record").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Record of processing — {{.Controller.Name}}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:1.8rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eee;vertical-align:top}
.blocked{color:#a00}.muted{color:#666}
</style></head><body>
<h1>Record of processing activities</h1>
<p class="muted">GDPR Art. 30(2) · tenant {{.TenantID}} · region {{.Region}} · generated {{.GeneratedAt.Format "2006-01-02 15:04 UTC"}}</p>

<h2>Processor and controller</h2>
<table>
<tr><th>Processor</th><td>{{.Processor.Name}}{{with .Processor.Contact}} · {{.}}{{end}}</td></tr>
<tr><th>Controller</th><td>{{.Controller.Name}}{{with .Controller.Contact}} · {{.}}{{end}}</td></tr>
{{with .Controller.DPOContact}}<tr><th>Data protection officer</th><td>{{.}}</td></tr>{{end}}
</table>

<h2>Categories of processing</h2>
<table><tr><th>Activity</th><th>Purpose</th><th>Legal basis</th><th>What</th></tr>
{{range .Processing}}<tr><td>{{.Name}}</td><td>{{.Purpose}}</td><td>{{.LegalBasis}}</td><td>{{.Description}}</td></tr>
{{end}}</table>

<h2>Categories of personal data observed</h2>
{{if .PersonalData}}<table><tr><th>Category</th><th>First seen</th></tr>
{{range .PersonalData}}<tr><td>{{.Name}}</td><td>{{.FirstSeen.Format "2006-01-02"}}</td></tr>
{{end}}</table>{{else}}<p>None yet: no data has been received.</p>{{end}}

<h2>Recipients</h2>
{{if .Recipients}}<table><tr><th>Kind</th><th>Name</th><th>Region</th><th>Status</th></tr>
{{range .Recipients}}<tr><td>{{.Kind}}</td><td>{{.Name}}</td><td>{{.Region}}</td><td>{{if .Blocked}}<span class="blocked">blocked: {{.Reason}}</span>{{else}}in use{{end}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}

<h2>Transfers outside the region</h2>
<p>{{if .Transfers.Allowed}}Allowed by the controller.{{else}}Forbidden: data stays in region {{.Region}}.{{end}}
{{with .Transfers.Destinations}}Destinations outside the region: {{range $i, $d := .}}{{if $i}}, {{end}}{{$d.Name}} ({{$d.Region}}{{if $d.Blocked}}, blocked{{end}}){{end}}.{{else}}No destination is outside the region.{{end}}</p>

<h2>Retention</h2>
<p>Events are kept {{.Retention.EventDays}} days: {{.Retention.Events}}. Profiles: {{.Retention.Profiles}}.</p>
<p>IP addresses: {{if .IP.Truncated}}truncated at ingestion to /{{.IP.IPv4Prefix}} (IPv4) or /{{.IP.IPv6Prefix}} (IPv6) before they are stored{{else}}stored in full (the controller turned truncation off){{end}}.</p>

<h2>Security measures</h2>
<table>
<tr><th>Encryption at rest</th><td>{{.Measures.EncryptionAtRest}}</td></tr>
<tr><th>Encryption in transit</th><td>{{if .Measures.TLS.Enabled}}TLS, version {{.Measures.TLS.MinVersion}} or newer{{else}}TLS is not enabled on this node (a proxy in front may terminate it){{end}}</td></tr>
<tr><th>Pseudonymisation</th><td>{{.Measures.Pseudonymisation}}</td></tr>
<tr><th>Audit</th><td>{{.Measures.AuditLog}}</td></tr>
<tr><th>Residency</th><td>{{.Measures.Residency}}</td></tr>
</table>
</body></html>
`))

// WriteHTML renders the record as a page for people.
func (r *Record) WriteHTML(w io.Writer) error {
	return page.Execute(w, r)
}
