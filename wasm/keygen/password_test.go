package keygen

import (
	"errors"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// A PKCS#12 password is a BMPString: go-pkcs12 cannot encode an emoji (or
// any character above U+FFFF) and failed with an error the page could only
// call "failed" ("Reload the page", which loses the key after issuance).
// PKCS12 now refuses such a password with ErrPasswordChars, for the page
// to say what is wrong, and keeps accepting accented letters; the file
// opens with the password as typed.
func TestPKCS12PasswordCharacters(t *testing.T) {
	key := testKey(t)
	ca := newTestCA(t)
	csrPEM, _ := CSR(key, "frank@example.com")
	leaf := ca.sign(t, csrPEM, "frank@example.com")

	for _, pw := range []string{"sleutel 🔑 wachtwoord", "ten chars\U00010000", "𝒫𝒶𝓈𝓈𝓌ℴ𝓇𝒹 ok!"} {
		for _, mode := range []string{ModeModern, ModeCompatible} {
			if p12, err := PKCS12(key, leaf, nil, pw, mode); !errors.Is(err, ErrPasswordChars) || p12 != nil {
				t.Errorf("%q (%s): %v, want ErrPasswordChars", pw, mode, err)
			}
		}
		if err := CheckPassword(pw); !errors.Is(err, ErrPasswordChars) {
			t.Errorf("CheckPassword(%q): %v", pw, err)
		}
	}
	for _, pw := range []string{"pässwörd éèê ünïcødé", "пароль пароль", "密码密码密码密码密码", "ten chars\uFFFD"} {
		for _, mode := range []string{ModeModern, ModeCompatible} {
			p12, err := PKCS12(key, leaf, nil, pw, mode)
			if err != nil {
				t.Errorf("%q (%s): %v", pw, mode, err)
				continue
			}
			if _, _, err := pkcs12.Decode(p12, pw); err != nil {
				t.Errorf("%q (%s): the file does not open with the password: %v", pw, mode, err)
			}
		}
	}
}
