package keygen

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestWasmImportsStayLean guards the module's size cheaply (one `go list`,
// no build): these packages add 50-300 kB to the WebAssembly module and the
// KeyGen needs none of them. golang.org/x/crypto/cryptobyte would be a second
// ASN.1 library next to encoding/asn1, which go-pkcs12 already links. The
// sizes themselves are measured by wasm/internal/benchpage and recorded in
// docs/keygen-notes.md, not asserted here.
func TestWasmImportsStayLean(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "list", "-deps", "certdesk/wasm")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	if !deps["software.sslmate.com/src/go-pkcs12"] || !deps["syscall/js"] {
		t.Fatalf("unexpected dependency list (is ./wasm still the KeyGen?): %s", out)
	}
	for _, p := range []string{
		"encoding/json", "encoding/xml", "golang.org/x/crypto/cryptobyte",
		"net/http", "crypto/tls", "text/template", "html/template", "regexp",
		"compress/flate", "log", "database/sql",
	} {
		if deps[p] {
			t.Errorf("certdesk/wasm (GOOS=js) imports %s", p)
		}
	}
}
