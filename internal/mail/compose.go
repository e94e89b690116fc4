package mail

// Message templates.
//
// A message is made of catalogue keys (go-i18n, internal/i18n/locales):
// one subject key, one or more body keys (plain text paragraphs, no
// Markdown; a "\n" inside a message is a line break) and zero or more
// links (a label key and a URL). One shared text layout and one shared
// HTML layout (html/template, every value escaped) wrap them, with the
// footer "mail.layout.footer". Template data ({{.Name}} in a message) is
// passed to every key.
//
// To add a kind, put its keys in your own pair of locale files
// (locales/<feature>.en.toml and .nl.toml; the i18n test fails when one
// lacks a key) and either register it once:
//
//	func init() {
//		mail.Register("keygen_link", mail.Template{
//			Subject: "keygen.mail.subject",
//			Body:    []string{"keygen.mail.greeting", "keygen.mail.body"},
//			Links:   []mail.TemplateLink{{Label: "keygen.mail.open", Field: "URL"}},
//		})
//	}
//	e, err := mail.Render(lang, "keygen_link", map[string]any{"Name": n, "URL": link})
//	e.To = addr
//
// or compose it in place:
//
//	e, err := mail.Compose(lang, "keygen.mail.subject", []string{"keygen.mail.body"},
//		data, []mail.Link{{Label: "keygen.mail.open", URL: link}})
//	e.To, e.Kind = addr, "keygen_link"
//
// then db.EnqueueEmail(ctx, tx, e) inside the transaction.

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strings"
	"sync"

	"certdesk/internal/i18n"
	"certdesk/internal/portal"
)

// Link is a call to action: Label is a catalogue key, URL an absolute
// http(s) URL (often a credential: it is never logged).
type Link struct {
	Label string
	URL   string
}

// TemplateLink is a link of a registered kind: the URL is read from the
// render data under Field (a string); a missing or empty value is an error.
type TemplateLink struct {
	Label string
	Field string
}

// Template is a registered kind of message.
type Template struct {
	Subject string   // catalogue key of the subject
	Body    []string // catalogue keys of the paragraphs, in order
	Links   []TemplateLink
}

var (
	kindsMu sync.RWMutex
	kinds   = map[string]Template{}
)

// Register adds a kind. It panics on an empty or duplicate name or a
// template without subject or body (a programming error, found at start).
func Register(kind string, t Template) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if kind == "" || t.Subject == "" || len(t.Body) == 0 {
		panic("mail.Register: kind, subject and body are required")
	}
	if _, dup := kinds[kind]; dup {
		panic("mail.Register: duplicate kind " + kind)
	}
	kinds[kind] = t
}

// LookupKind returns the registered template of kind.
func LookupKind(kind string) (Template, bool) {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	t, ok := kinds[kind]
	return t, ok
}

// KindTest is a test message: "it works" and a link (data "URL") to the
// portal. Its keys are in locales/mail.*.toml.
const KindTest = "test"

func init() {
	Register(KindTest, Template{
		Subject: "mail.test.subject",
		Body:    []string{"mail.test.body"},
		Links:   []TemplateLink{{Label: "mail.test.link", Field: "URL"}},
	})
}

// Render renders a registered kind in lang (any language preference; an
// unsupported one falls back to English). The result has Subject, Text,
// HTML, Lang and Kind set; the caller sets To and Attachments.
func Render(lang, kind string, data map[string]any) (portal.Email, error) {
	t, ok := LookupKind(kind)
	if !ok {
		return portal.Email{}, fmt.Errorf("mail: unknown kind %q", kind)
	}
	links := make([]Link, 0, len(t.Links))
	for _, tl := range t.Links {
		u, _ := data[tl.Field].(string)
		if u == "" {
			return portal.Email{}, fmt.Errorf("mail: kind %q needs data %q (a URL)", kind, tl.Field)
		}
		links = append(links, Link{Label: tl.Label, URL: u})
	}
	e, err := Compose(lang, t.Subject, t.Body, data, links)
	if err != nil {
		return portal.Email{}, fmt.Errorf("mail: kind %q: %w", kind, err)
	}
	e.Kind = kind
	return e, nil
}

// Compose builds an email from catalogue keys in lang: subjectKey for the
// subject, bodyKeys for the paragraphs, links as calls to action, data for
// the messages' template fields. Every key must exist in the language
// (a typo is an error, not a raw key in someone's inbox) and every link
// must be an absolute http or https URL. Kind and To are left to the
// caller.
func Compose(lang, subjectKey string, bodyKeys []string, data map[string]any, links []Link) (portal.Email, error) {
	loc := i18n.For(lang)
	tr := func(key string) (string, error) {
		if !i18n.Has(loc.Lang, key) {
			return "", fmt.Errorf("message %q missing in %q", key, loc.Lang)
		}
		return loc.T(key, data), nil
	}
	subject, err := tr(subjectKey)
	if err != nil {
		return portal.Email{}, err
	}
	subject = strings.TrimSpace(subject)
	if subject == "" || strings.ContainsAny(subject, "\r\n") {
		return portal.Email{}, fmt.Errorf("subject %q is empty or spans lines", subjectKey)
	}
	if len(bodyKeys) == 0 {
		return portal.Email{}, fmt.Errorf("no body")
	}
	v := layoutView{Lang: loc.Lang, Subject: subject}
	for _, k := range bodyKeys {
		p, err := tr(k)
		if err != nil {
			return portal.Email{}, err
		}
		v.Paragraphs = append(v.Paragraphs, strings.Split(strings.TrimSpace(p), "\n"))
	}
	for _, l := range links {
		u, err := url.Parse(l.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return portal.Email{}, fmt.Errorf("link %q: not an absolute http(s) URL", l.Label)
		}
		label, err := tr(l.Label)
		if err != nil {
			return portal.Email{}, err
		}
		v.Links = append(v.Links, linkView{Label: label, URL: u.String()})
	}
	if v.Footer, err = tr("mail.layout.footer"); err != nil {
		return portal.Email{}, err
	}
	if v.LinkHint, err = tr("mail.layout.link_hint"); err != nil {
		return portal.Email{}, err
	}

	var html bytes.Buffer
	if err := htmlLayout.Execute(&html, v); err != nil {
		return portal.Email{}, err
	}
	return portal.Email{Subject: subject, Text: textLayout(v), HTML: html.String(), Lang: loc.Lang}, nil
}

type linkView struct{ Label, URL string }

type layoutView struct {
	Lang, Subject, Footer, LinkHint string
	Paragraphs                      [][]string // lines of each paragraph
	Links                           []linkView
}

// textLayout is the shared plain-text layout: paragraphs separated by a
// blank line, each link as "Label:" with the URL on its own line, then the
// footer after the signature separator "-- ".
func textLayout(v layoutView) string {
	var b strings.Builder
	for _, p := range v.Paragraphs {
		for _, line := range p {
			b.WriteString(strings.TrimRight(line, " \t"))
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	for _, l := range v.Links {
		b.WriteString(l.Label)
		b.WriteString(":\n")
		b.WriteString(l.URL)
		b.WriteString("\n\n")
	}
	b.WriteString("-- \n")
	b.WriteString(v.Footer)
	b.WriteString("\n")
	return b.String()
}

// htmlLayout is the shared HTML layout. Inline styles only (mail clients
// drop <style> and external CSS); html/template escapes every value and
// refuses non-http(s) URLs in href.
var htmlLayout = htmltemplate.Must(htmltemplate.New("mail").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Subject}}</title>
</head>
<body style="margin:0;padding:0;background:#f3f4f6;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f3f4f6;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" style="max-width:600px;width:100%;background:#ffffff;border:1px solid #d9dce1;border-radius:6px;">
<tr><td style="padding:20px 28px;border-bottom:3px solid #1f4e8c;font-family:Arial,Helvetica,sans-serif;font-size:18px;font-weight:bold;color:#1f4e8c;">certdesk</td></tr>
<tr><td style="padding:24px 28px;font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.5;color:#1d2330;">
{{- range .Paragraphs}}
<p style="margin:0 0 16px 0;">{{range $i, $line := .}}{{if $i}}<br>{{end}}{{$line}}{{end}}</p>
{{- end}}
{{- range .Links}}
<p style="margin:24px 0 8px 0;"><a href="{{.URL}}" style="display:inline-block;padding:10px 18px;background:#1f4e8c;color:#ffffff;text-decoration:none;border-radius:4px;font-weight:bold;">{{.Label}}</a></p>
<p style="margin:0 0 16px 0;font-size:13px;color:#555b66;">{{$.LinkHint}}<br><a href="{{.URL}}" style="color:#1f4e8c;word-break:break-all;">{{.URL}}</a></p>
{{- end}}
</td></tr>
</table>
<p style="max-width:600px;margin:12px auto 0 auto;font-family:Arial,Helvetica,sans-serif;font-size:12px;line-height:1.4;color:#6b7280;">{{.Footer}}</p>
</td></tr>
</table>
</body>
</html>
`))
