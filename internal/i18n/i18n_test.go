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
