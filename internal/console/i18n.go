package console

import (
	"strconv"
	"strings"
)

// catalogue is the text of the privacy center in one language.
type catalogue map[string]string

// text returns the text of key, in English when this language lacks it.
func (c catalogue) text(key string) string {
	if s, ok := c[key]; ok {
		return s
	}
	if s, ok := catalogues["en"][key]; ok {
		return s
	}
	return key
}

// languages are the privacy center's languages, in the order offered.
var languages = []string{"en", "de", "fr"}

// negotiate picks the first language of an Accept-Language header that
// the privacy center speaks; English otherwise.
func negotiate(header string) string {
	best, bestQ := "en", -1.0
	for i, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			} else {
				continue
			}
		}
		q -= float64(i) * 1e-6 // equal weights keep the header's order
		code := strings.ToLower(tag)
		if len(code) > 2 {
			code = code[:2]
		}
		if catalogues[code] != nil && q > bestQ {
			best, bestQ = code, q
		}
	}
	return best
}

// catalogues are the texts by language code.
var catalogues = map[string]catalogue{
	"en": {
		"language":          "English",
		"nav.policy":        "Privacy policy",
		"nav.language":      "Language",
		"signin.title":      "Your data and your choices",
		"signin.intro":      "See what we hold about you, download it, have it erased, and choose what we may do with it. First, prove that it is you: we send a one-time sign-in link to your e-mail address.",
		"signin.email":      "Your e-mail address",
		"signin.submit":     "Send me a sign-in link",
		"signin.bad_email":  "Enter an e-mail address, like name@example.com.",
		"signin.too_many":   "Too many sign-in links were asked for. Wait a few minutes and try again.",
		"signin.sent":       "If we hold data about that address, a sign-in link is on its way to it. The link works once, for 15 minutes.",
		"enter.title":       "Sign in",
		"enter.intro":       "Continue to see your data and choices.",
		"enter.submit":      "Continue",
		"enter.expired":     "This sign-in link has expired or was already used. Ask for a new one.",
		"enter.invalid":     "This sign-in link is not valid.",
		"enter.again":       "Ask for a new link",
		"me.title":          "Your data",
		"me.nothing":        "We hold no data about you.",
		"me.identifiers":    "Identifiers",
		"me.traits":         "Profile",
		"me.events":         "Activity we recorded",
		"me.events.kind":    "Kind",
		"me.events.count":   "Count",
		"me.events.first":   "First",
		"me.events.last":    "Last",
		"me.events.total":   "events in all",
		"me.purposes":       "Why we process your data",
		"me.recipients":     "Who receives it",
		"me.no_recipients":  "Nobody else.",
		"me.retention":      "How long we keep it",
		"me.retention.days": "Activity is deleted after this many days:",
		"me.actions":        "Your rights",
		"me.download":       "Download my data (ZIP)",
		"me.download.help":  "A complete, machine-readable copy of everything we hold about you.",
		"me.erase":          "Erase my data…",
		"me.suppress":       "Stop collecting my data",
		"me.suppress.help":  "Nothing you do from now on is recorded.",
		"me.object":         "Object to marketing",
		"me.object.help":    "You receive no marketing from us, whatever else you agreed to.",
		"me.consent":        "Your consent",
		"me.consent.help":   "Tick what you agree to. No tick means no.",
		"me.consent.save":   "Save my choices",
		"me.purpose":        "Purpose",
		"me.signout":        "Sign out",
		"erase.title":       "Erase your data",
		"erase.warning":     "Everything we hold about you is erased for good, and the services we passed it to are told. This cannot be undone.",
		"erase.confirm":     "I understand: erase all my data",
		"erase.submit":      "Erase my data",
		"erase.cancel":      "Keep my data",
		"erase.unconfirmed": "Tick the box to confirm the erasure.",
		"erase.done":        "Your data is being erased. Your request number is %s.",
		"done.suppress":     "Done: nothing more will be recorded about you.",
		"done.object":       "Done: you will receive no marketing.",
		"done.consent":      "Your choices are saved.",
		"error.title":       "Something is wrong",
		"error.csrf":        "This form is out of date. Reload the page and try again.",
		"error.internal":    "Something went wrong on our side. Please try again.",
		"mail.subject":      "Your sign-in link for %s",
		"mail.body":         "Hello,\n\nsomeone, hopefully you, asked to see the data %s holds about this address. Open this link to sign in:\n\n%s\n\nIt works once and for %d minutes. If you did not ask for it, ignore this e-mail.\n",
	},
	"de": {
		"language":          "Deutsch",
		"nav.policy":        "Datenschutzerklärung",
		"nav.language":      "Sprache",
		"signin.title":      "Ihre Daten und Ihre Entscheidungen",
		"signin.intro":      "Sehen Sie, welche Daten wir über Sie speichern, laden Sie sie herunter, lassen Sie sie löschen und bestimmen Sie, was wir damit tun dürfen. Zuerst bestätigen Sie, dass Sie es sind: Wir senden Ihnen einen einmaligen Anmeldelink per E-Mail.",
		"signin.email":      "Ihre E-Mail-Adresse",
		"signin.submit":     "Anmeldelink senden",
		"signin.bad_email":  "Geben Sie eine E-Mail-Adresse ein, etwa name@example.com.",
		"signin.too_many":   "Es wurden zu viele Anmeldelinks angefordert. Warten Sie einige Minuten und versuchen Sie es erneut.",
		"signin.sent":       "Falls wir Daten zu dieser Adresse speichern, ist ein Anmeldelink unterwegs. Er gilt einmal und 15 Minuten lang.",
		"enter.title":       "Anmelden",
		"enter.intro":       "Weiter zu Ihren Daten und Entscheidungen.",
		"enter.submit":      "Weiter",
		"enter.expired":     "Dieser Anmeldelink ist abgelaufen oder wurde schon benutzt. Fordern Sie einen neuen an.",
		"enter.invalid":     "Dieser Anmeldelink ist ungültig.",
		"enter.again":       "Neuen Link anfordern",
		"me.title":          "Ihre Daten",
		"me.nothing":        "Wir speichern keine Daten über Sie.",
		"me.identifiers":    "Kennungen",
		"me.traits":         "Profil",
		"me.events":         "Erfasste Aktivitäten",
		"me.events.kind":    "Art",
		"me.events.count":   "Anzahl",
		"me.events.first":   "Erste",
		"me.events.last":    "Letzte",
		"me.events.total":   "Ereignisse insgesamt",
		"me.purposes":       "Wozu wir Ihre Daten verarbeiten",
		"me.recipients":     "Wer sie erhält",
		"me.no_recipients":  "Niemand sonst.",
		"me.retention":      "Wie lange wir sie speichern",
		"me.retention.days": "Aktivitäten werden nach so vielen Tagen gelöscht:",
		"me.actions":        "Ihre Rechte",
		"me.download":       "Meine Daten herunterladen (ZIP)",
		"me.download.help":  "Eine vollständige, maschinenlesbare Kopie aller Daten, die wir über Sie speichern.",
		"me.erase":          "Meine Daten löschen…",
		"me.suppress":       "Keine Daten mehr erfassen",
		"me.suppress.help":  "Nichts, was Sie ab jetzt tun, wird erfasst.",
		"me.object":         "Werbung widersprechen",
		"me.object.help":    "Sie erhalten keine Werbung von uns, gleich was Sie sonst erlaubt haben.",
		"me.consent":        "Ihre Einwilligungen",
		"me.consent.help":   "Kreuzen Sie an, womit Sie einverstanden sind. Kein Kreuz heißt nein.",
		"me.consent.save":   "Auswahl speichern",
		"me.purpose":        "Zweck",
		"me.signout":        "Abmelden",
		"erase.title":       "Ihre Daten löschen",
		"erase.warning":     "Alle Daten, die wir über Sie speichern, werden endgültig gelöscht, und die Dienste, an die wir sie weitergegeben haben, werden benachrichtigt. Das kann nicht rückgängig gemacht werden.",
		"erase.confirm":     "Ich verstehe: alle meine Daten löschen",
		"erase.submit":      "Meine Daten löschen",
		"erase.cancel":      "Daten behalten",
		"erase.unconfirmed": "Kreuzen Sie das Kästchen an, um die Löschung zu bestätigen.",
		"erase.done":        "Ihre Daten werden gelöscht. Ihre Antragsnummer ist %s.",
		"done.suppress":     "Erledigt: Über Sie wird nichts mehr erfasst.",
		"done.object":       "Erledigt: Sie erhalten keine Werbung.",
		"done.consent":      "Ihre Auswahl ist gespeichert.",
		"error.title":       "Etwas stimmt nicht",
		"error.csrf":        "Dieses Formular ist veraltet. Laden Sie die Seite neu und versuchen Sie es erneut.",
		"error.internal":    "Bei uns ist etwas schiefgegangen. Bitte versuchen Sie es erneut.",
		"mail.subject":      "Ihr Anmeldelink für %s",
		"mail.body":         "Hallo,\n\njemand, hoffentlich Sie, möchte die Daten sehen, die %s zu dieser Adresse speichert. Öffnen Sie diesen Link, um sich anzumelden:\n\n%s\n\nEr gilt einmal und %d Minuten lang. Wenn Sie ihn nicht angefordert haben, ignorieren Sie diese E-Mail.\n",
	},
	"fr": {
		"language":          "Français",
		"nav.policy":        "Politique de confidentialité",
		"nav.language":      "Langue",
		"signin.title":      "Vos données et vos choix",
		"signin.intro":      "Voyez ce que nous détenons sur vous, téléchargez-le, faites-le effacer et choisissez ce que nous pouvons en faire. D’abord, prouvez que c’est vous : nous envoyons un lien de connexion à usage unique à votre adresse e-mail.",
		"signin.email":      "Votre adresse e-mail",
		"signin.submit":     "M’envoyer un lien de connexion",
		"signin.bad_email":  "Saisissez une adresse e-mail, comme nom@example.com.",
		"signin.too_many":   "Trop de liens de connexion ont été demandés. Attendez quelques minutes et réessayez.",
		"signin.sent":       "Si nous détenons des données sur cette adresse, un lien de connexion lui a été envoyé. Il fonctionne une fois, pendant 15 minutes.",
		"enter.title":       "Connexion",
		"enter.intro":       "Continuez pour voir vos données et vos choix.",
		"enter.submit":      "Continuer",
		"enter.expired":     "Ce lien de connexion a expiré ou a déjà été utilisé. Demandez-en un nouveau.",
		"enter.invalid":     "Ce lien de connexion n’est pas valide.",
		"enter.again":       "Demander un nouveau lien",
		"me.title":          "Vos données",
		"me.nothing":        "Nous ne détenons aucune donnée sur vous.",
		"me.identifiers":    "Identifiants",
		"me.traits":         "Profil",
		"me.events":         "Activité enregistrée",
		"me.events.kind":    "Type",
		"me.events.count":   "Nombre",
		"me.events.first":   "Premier",
		"me.events.last":    "Dernier",
		"me.events.total":   "événements au total",
		"me.purposes":       "Pourquoi nous traitons vos données",
		"me.recipients":     "Qui les reçoit",
		"me.no_recipients":  "Personne d’autre.",
		"me.retention":      "Combien de temps nous les gardons",
		"me.retention.days": "L’activité est supprimée après ce nombre de jours :",
		"me.actions":        "Vos droits",
		"me.download":       "Télécharger mes données (ZIP)",
		"me.download.help":  "Une copie complète, lisible par machine, de tout ce que nous détenons sur vous.",
		"me.erase":          "Effacer mes données…",
		"me.suppress":       "Ne plus collecter mes données",
		"me.suppress.help":  "Rien de ce que vous faites désormais n’est enregistré.",
		"me.object":         "M’opposer au marketing",
		"me.object.help":    "Vous ne recevez aucun message marketing de notre part, quoi que vous ayez accepté par ailleurs.",
		"me.consent":        "Votre consentement",
		"me.consent.help":   "Cochez ce que vous acceptez. Sans coche, c’est non.",
		"me.consent.save":   "Enregistrer mes choix",
		"me.purpose":        "Finalité",
		"me.signout":        "Se déconnecter",
		"erase.title":       "Effacer vos données",
		"erase.warning":     "Tout ce que nous détenons sur vous est effacé définitivement, et les services auxquels nous l’avons transmis sont prévenus. C’est irréversible.",
		"erase.confirm":     "Je comprends : effacer toutes mes données",
		"erase.submit":      "Effacer mes données",
		"erase.cancel":      "Garder mes données",
		"erase.unconfirmed": "Cochez la case pour confirmer l’effacement.",
		"erase.done":        "Vos données sont en cours d’effacement. Le numéro de votre demande est %s.",
		"done.suppress":     "C’est fait : plus rien ne sera enregistré sur vous.",
		"done.object":       "C’est fait : vous ne recevrez aucun message marketing.",
		"done.consent":      "Vos choix sont enregistrés.",
		"error.title":       "Un problème est survenu",
		"error.csrf":        "Ce formulaire n’est plus à jour. Rechargez la page et réessayez.",
		"error.internal":    "Un problème est survenu de notre côté. Veuillez réessayer.",
		"mail.subject":      "Votre lien de connexion pour %s",
		"mail.body":         "Bonjour,\n\nquelqu’un, vous espérons-le, a demandé à voir les données que %s détient sur cette adresse. Ouvrez ce lien pour vous connecter :\n\n%s\n\nIl fonctionne une fois, pendant %d minutes. Si vous ne l’avez pas demandé, ignorez cet e-mail.\n",
	},
}
