package mail_test

import (
	"strings"
	"testing"

	"certdesk/internal/mail"
)

func TestRenderSpeaksTheRecipientsLanguage(t *testing.T) {
	data := map[string]any{"URL": "https://certdesk.test/"}
	en, err := mail.Render("en", mail.KindTest, data)
	if err != nil {
		t.Fatal(err)
	}
	nl, err := mail.Render("nl-NL,nl;q=0.9", mail.KindTest, data)
	if err != nil {
		t.Fatal(err)
	}
	if en.Subject != "certdesk test message" || nl.Subject != "Testbericht van certdesk" {
		t.Fatalf("subjects en %q nl %q", en.Subject, nl.Subject)
	}
	if en.Lang != "en" || nl.Lang != "nl" || en.Kind != "test" || nl.Kind != "test" {
		t.Fatalf("lang/kind: %q %q %q %q", en.Lang, nl.Lang, en.Kind, nl.Kind)
	}
	if !strings.Contains(en.Text, "outgoing email works") || !strings.Contains(nl.Text, "versturen van e-mail") {
		t.Fatalf("bodies:\n%s\n%s", en.Text, nl.Text)
	}
	if !strings.Contains(en.HTML, `<html lang="en">`) || !strings.Contains(nl.HTML, "Naar certdesk</a>") {
		t.Fatal("html layout not in the recipient's language")
	}
	// An unsupported language falls back to English.
	de, err := mail.Render("de", mail.KindTest, data)
	if err != nil || de.Subject != en.Subject {
		t.Fatalf("de: %q %v", de.Subject, err)
	}
}

func TestComposeLayoutsEscapeAndLink(t *testing.T) {
	// The test body takes no data; use a message with a link whose URL has
	// characters that must be escaped in HTML.
	link := "https://certdesk.test/k/abc?x=1&y=<2>"
	e, err := mail.Compose("en", "mail.test.subject", []string{"mail.test.body", "mail.layout.link_hint"},
		map[string]any{}, []mail.Link{{Label: "mail.test.link", URL: link}})
	if err != nil {
		t.Fatal(err)
	}
	wantText := "This is a test message from certdesk.\nIf you can read it, outgoing email works.\n\n" +
		"If the button does not work, copy this address into your browser:\n\n" +
		"Open certdesk:\n" + link + "\n\n" +
		"-- \nThis message was sent automatically by certdesk. Replies to it are not read.\n"
	if e.Text != wantText {
		t.Fatalf("text layout:\n%q\nwant\n%q", e.Text, wantText)
	}
	if strings.Contains(e.HTML, "<2>") || !strings.Contains(e.HTML, `href="https://certdesk.test/k/abc?x=1&amp;y=%3c2%3e"`) ||
		!strings.Contains(e.HTML, `>https://certdesk.test/k/abc?x=1&amp;y=&lt;2&gt;</a>`) {
		t.Fatalf("html link not escaped:\n%s", e.HTML)
	}
	if !strings.Contains(e.HTML, "certdesk.<br>If you can read it") {
		t.Fatal("line break inside a paragraph lost in HTML")
	}
}

func TestComposeRefusesMistakes(t *testing.T) {
	cases := map[string]func() error{
		"unknown subject key": func() error {
			_, err := mail.Compose("en", "mail.nope.subject", []string{"mail.test.body"}, nil, nil)
			return err
		},
		"unknown body key": func() error {
			_, err := mail.Compose("nl", "mail.test.subject", []string{"mail.nope"}, nil, nil)
			return err
		},
		"no body": func() error {
			_, err := mail.Compose("en", "mail.test.subject", nil, nil, nil)
			return err
		},
		"javascript link": func() error {
			_, err := mail.Compose("en", "mail.test.subject", []string{"mail.test.body"}, nil,
				[]mail.Link{{Label: "mail.test.link", URL: "javascript:alert(1)"}})
			return err
		},
		"relative link": func() error {
			_, err := mail.Compose("en", "mail.test.subject", []string{"mail.test.body"}, nil,
				[]mail.Link{{Label: "mail.test.link", URL: "/keygen/x"}})
			return err
		},
		"unknown kind": func() error {
			_, err := mail.Render("en", "no_such_kind", nil)
			return err
		},
		"kind without its link data": func() error {
			_, err := mail.Render("en", mail.KindTest, map[string]any{})
			return err
		},
	}
	for name, f := range cases {
		if f() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRegisterRejectsDuplicates(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate kind registered without panic")
		}
	}()
	mail.Register(mail.KindTest, mail.Template{Subject: "mail.test.subject", Body: []string{"mail.test.body"}})
}
