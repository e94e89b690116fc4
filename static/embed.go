// Package static embeds the stylesheet, scripts and (when built by make)
// the KeyGen WebAssembly module and Go's wasm_exec.js.
package static

import "embed"

// FS holds everything in this folder that was present at build time.
//
//go:embed *
var FS embed.FS
