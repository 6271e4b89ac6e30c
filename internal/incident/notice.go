package incident

import (
	"context"
	"fmt"
	"strings"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// Notice is a draft of the controller's notice to the people affected
// (Art. 34), with the assessment of the Art. 34(3)(a) exception.
type Notice struct {
	Incident string `json:"incident_id"`
	// ExceptionLikely is true when the data was encrypted and the keys
	// were safe: the data is unintelligible to whoever got it, so the
	// exception of Art. 34(3)(a) likely applies.
	ExceptionLikely bool   `json:"art34_3a_exception_likely"`
	Assessment      string `json:"assessment"`
	Subject         string `json:"subject"`
	Text            string `json:"text"`
}

// Notice drafts the notice to the people affected by an incident, for
// tenant t (its controller name and contacts fill the draft); NotFound
// when the tenant is not in the incident's scope.
func (r *Register) Notice(ctx context.Context, t *custos.Tenant, id string) (Notice, error) {
	inc, _, err := r.TenantIncident(ctx, t.ID, id)
	if err != nil {
		return Notice{}, err
	}
	nt := Draft(inc, &t.Settings)
	if err := r.record(ctx, t.ID, audit.Entry{Actor: audit.ActorTenant, Action: "incident.notice.draft", RequestID: id,
		Details: map[string]any{"incident": id, "exception_likely": nt.ExceptionLikely}}); err != nil {
		return Notice{}, err
	}
	return nt, nil
}

// categoryWords says the usual data categories in plain words.
var categoryWords = map[string]string{
	"contact.email":          "your e-mail address",
	"contact.phone":          "your phone number",
	"contact.name":           "your name",
	"contact.address":        "your postal address",
	"device.ip_address":      "the IP address of your device",
	"device.advertising_id":  "your device's advertising identifier",
	"device.id":              "your device identifier",
	"behaviour.events":       "records of how you used our service (pages and actions)",
	"profile.traits":         "profile details you gave us",
	"identifiers.user_id":    "your account identifier",
	"payment.card":           "payment card details",
	"credentials.password":   "your password",
	"identity.date_of_birth": "your date of birth",
}

func plainCategories(cs []string) string {
	words := make([]string, 0, len(cs))
	for _, c := range cs {
		w, ok := categoryWords[c]
		if !ok && strings.HasPrefix(c, "profile.traits.") {
			w, ok = "your profile detail \""+strings.TrimPrefix(c, "profile.traits.")+"\"", true
		}
		if !ok {
			w = c
		}
		words = append(words, w)
	}
	return strings.Join(words, "; ")
}

// Draft writes the notice for an incident and a controller's settings.
func Draft(inc *custos.Incident, s *custos.Settings) Notice {
	n := Notice{Incident: inc.ID, ExceptionLikely: inc.Encrypted && inc.KeysSafe}
	switch {
	case n.ExceptionLikely:
		n.Assessment = "The Art. 34(3)(a) exception likely applies: the personal data affected was encrypted and the encryption keys " +
			"were not compromised, so the data is unintelligible to anyone not authorised to access it. Telling the people affected " +
			"is then likely not required; record this assessment and its reasons. The draft below is for the case that you decide to tell them anyway."
	case inc.Encrypted:
		n.Assessment = "The Art. 34(3)(a) exception does not apply: the data was encrypted, but the encryption keys may have been " +
			"compromised, so it may be intelligible to whoever got it. If the breach is likely to result in a high risk to people's " +
			"rights and freedoms, you must tell them without undue delay (Art. 34(1)); the draft below holds what Art. 34(2) requires."
	default:
		n.Assessment = "The Art. 34(3)(a) exception does not apply: the data affected was not encrypted. If the breach is likely to " +
			"result in a high risk to people's rights and freedoms, you must tell them without undue delay (Art. 34(1)); the draft " +
			"below holds what Art. 34(2) requires."
	}
	who := s.ControllerName
	if who == "" {
		who = "[your organisation]"
	}
	contact := s.DPOContact
	if contact == "" {
		contact = s.ControllerContact
	}
	if contact == "" {
		contact = "[your data protection contact: name, e-mail, phone]"
	}
	n.Subject = "Important: a security incident involving your personal data at " + who

	var b strings.Builder
	fmt.Fprintf(&b, "Dear customer,\n\n")
	fmt.Fprintf(&b, "We are writing to tell you about a security incident that involves some of your personal data held by %s.\n\n", who)
	fmt.Fprintf(&b, "What happened\n%s The incident was discovered on %s.\n\n", sentence(inc.Nature), inc.DetectedAt.Format("2 January 2006"))
	fmt.Fprintf(&b, "What information was involved\n%s.\n\n", capital(plainCategories(inc.DataCategories)))
	if n.ExceptionLikely {
		fmt.Fprintf(&b, "This information was stored encrypted, and the keys needed to read it were not affected. "+
			"We therefore believe it cannot be read by whoever accessed it.\n\n")
	}
	fmt.Fprintf(&b, "What this could mean for you\n%s\n\n", sentence(inc.Consequences))
	fmt.Fprintf(&b, "What we have done\n%s", sentence(inc.Measures))
	for _, u := range inc.Updates {
		fmt.Fprintf(&b, " %s", sentence(u.Message))
	}
	fmt.Fprintf(&b, "\n\nWhat you can do\nBe careful with unexpected e-mails, calls or messages that mention this incident or ask for "+
		"passwords or payment details; we will never ask you for them. If you reused a password, change it wherever you used it.\n\n")
	fmt.Fprintf(&b, "Who to contact\nIf you have questions, contact %s. You also have the right to lodge a complaint with a data protection authority.\n\n", contact)
	fmt.Fprintf(&b, "We are sorry this happened.\n%s\n", who)
	n.Text = b.String()
	return n
}

// sentence trims s and ends it with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if !strings.ContainsAny(s[len(s)-1:], ".!?") {
		s += "."
	}
	return capital(s)
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
