package i18n

import (
	"sort"
	"testing"
)

// Every key must exist in every language: a missing translation fails here.
func TestCatalogueComplete(t *testing.T) {
	keys, err := Keys()
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]bool{}
	for _, ks := range keys {
		for k := range ks {
			all[k] = true
		}
	}
	var missing []string
	for _, lang := range Languages {
		for k := range all {
			if !keys[lang][k] {
				missing = append(missing, lang+": "+k)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("%d keys missing:\n%v", len(missing), missing)
	}
	if len(all) == 0 {
		t.Fatal("empty catalogue")
	}
}

func TestMatch(t *testing.T) {
	cases := map[string]string{"nl-NL,nl;q=0.9,en;q=0.8": "nl", "de-DE,en;q=0.5": "en", "fr": "en", "": "en", "nl": "nl"}
	for in, want := range cases {
		if got := Match(in); got != want {
			t.Errorf("Match(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Match("nl", "en"); got != "nl" {
		t.Errorf("switch first: %q", got)
	}
}

// Has (a map look-up) answers as go-i18n does: every id of the catalogue
// in each language, ids that do not exist, and a language we do not have.
func TestHasMatchesLocalizer(t *testing.T) {
	keys, err := Keys()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, lang := range append(Languages, "de") {
		ids := []string{"no.such.message", "", "certs.mail.issued"}
		for k := range keys["en"] {
			ids = append(ids, k)
		}
		for _, id := range ids {
			if got, want := Has(lang, id), hasLocalized(lang, id); got != want {
				t.Errorf("Has(%q, %q) = %v, go-i18n says %v", lang, id, got, want)
			}
			if Has(lang, id) {
				n++
			}
		}
	}
	if n < 2*len(keys["en"]) || Has("en", "no.such.message") || Has("de", "certs.mail.issued.subject") {
		t.Fatalf("Has found %d ids for %d keys in two languages", n, len(keys["en"]))
	}
}
