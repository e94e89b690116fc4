// Package i18n holds the translation catalogue (English and Dutch) with
// go-i18n. Each feature keeps its messages in its own pair of files,
// locales/<feature>.en.toml and locales/<feature>.nl.toml; a test fails
// when a key is missing in either language.
package i18n

import (
	"embed"
	"io/fs"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

//go:embed locales/*.toml
var localeFS embed.FS

// Languages the portal speaks, the default first.
var Languages = []string{"en", "nl"}

// Bundle is the loaded catalogue.
var Bundle = mustLoad()

func mustLoad() *i18n.Bundle {
	b := i18n.NewBundle(language.English)
	b.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	files, err := fs.Glob(localeFS, "locales/*.toml")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		if _, err := b.LoadMessageFileFS(localeFS, f); err != nil {
			panic("i18n: " + f + ": " + err.Error())
		}
	}
	return b
}

// Localizer translates for one language.
type Localizer struct {
	Lang string
	l    *i18n.Localizer
}

// For returns a localizer for the first supported language among prefs
// (a language switch value, then Accept-Language values).
func For(prefs ...string) *Localizer {
	lang := Match(prefs...)
	return &Localizer{Lang: lang, l: i18n.NewLocalizer(Bundle, lang)}
}

// Match picks the supported language for a list of preferences, each of
// which may be an Accept-Language header.
func Match(prefs ...string) string {
	for _, p := range prefs {
		if p == "" {
			continue
		}
		tags, _, err := language.ParseAcceptLanguage(p)
		if err != nil {
			continue
		}
		for _, t := range tags {
			base, _ := t.Base()
			for _, l := range Languages {
				if base.String() == l {
					return l
				}
			}
		}
	}
	return Languages[0]
}

// T translates a message id with optional template data. A missing id
// returns the id itself (and the catalogue test catches it).
func (z *Localizer) T(id string, data ...map[string]any) string {
	cfg := &i18n.LocalizeConfig{MessageID: id}
	if len(data) > 0 {
		cfg.TemplateData = data[0]
	}
	s, err := z.l.Localize(cfg)
	if err != nil {
		return id
	}
	return s
}

// Has reports whether the catalogue has id in language lang (a map
// look-up: every email composes several messages and asks first; asking
// go-i18n rendered each message twice).
func Has(lang, id string) bool {
	if keys, ok := catalogueKeys()[lang]; ok {
		return keys[id]
	}
	return hasLocalized(lang, id)
}

// catalogueKeys is Keys, read once (the embedded files do not change).
var catalogueKeys = sync.OnceValue(func() map[string]map[string]bool {
	k, err := Keys()
	if err != nil {
		panic("i18n: " + err.Error()) // mustLoad parsed the same files
	}
	return k
})

// hasLocalized asks go-i18n: id localizes in lang without falling back
// to another language.
func hasLocalized(lang, id string) bool {
	l := i18n.NewLocalizer(Bundle, lang)
	_, tag, err := l.LocalizeWithTag(&i18n.LocalizeConfig{MessageID: id})
	return err == nil && strings.HasPrefix(tag.String(), lang)
}

// Keys returns every message id per language file found in the catalogue.
func Keys() (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	files, err := fs.Glob(localeFS, "locales/*.toml")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(f, "locales/"), ".toml"), ".")
		lang := parts[len(parts)-1]
		body, err := localeFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := toml.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		if out[lang] == nil {
			out[lang] = map[string]bool{}
		}
		for k := range m {
			out[lang][k] = true
		}
	}
	return out, nil
}
