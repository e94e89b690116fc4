package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// NewToken returns a random value with 160 bits from crypto/rand, encoded
// in lower-case base32 without padding (URL- and DNS-label-safe). Every
// link, DCV value and session id comes from here (at least 128 bits,
// TLS BR 3.2.2.4 "Random Value", SBR 3.2.2.2).
func NewToken() string {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// HashToken returns the hex SHA-256 of a token; only hashes are stored.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// TokenEqual compares two secrets in constant time.
func TokenEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// codeAlphabet avoids letters and digits that are confused when read
// aloud or written down (0/O, 1/I/L, 5/S, 2/Z, 8/B, U/V).
const codeAlphabet = "ACDEFGHJKMNPQRTWXY34679"

// NewReadableCode returns a code of n characters from an alphabet that is
// easy to read aloud on a voicemail, grouped as XXXX-XXXX.
func NewReadableCode(n int) string {
	var sb strings.Builder
	b := make([]byte, 1)
	for i := 0; i < n; {
		if _, err := rand.Read(b); err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		// rejection sampling keeps the distribution uniform
		if int(b[0]) >= 256-256%len(codeAlphabet) {
			continue
		}
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(codeAlphabet[int(b[0])%len(codeAlphabet)])
		i++
	}
	return sb.String()
}

// NormalizeCode upper-cases a typed code and removes spaces and dashes.
func NormalizeCode(s string) string {
	s = strings.ToUpper(s)
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
}
