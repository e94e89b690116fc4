//go:build js && wasm

// Command wasm is the browser KeyGen: a thin syscall/js bridge around
// certdesk/wasm/keygen. It makes the recipient's RSA key and CSR in the page
// and later packages the PKCS#12, so the private key never leaves the browser.
//
// The browser's WebCrypto makes the key pair and signs the request; the
// module builds the request and the PKCS#12. It sets window.certdeskKeyGen
// with functions that return Promises (all bytes are DER in Uint8Arrays; the
// page does the PEM armour):
//
//	csrInfo(email, spkiUint8Array)      -> Uint8Array: CertificationRequestInfo to sign
//	csrAssemble(signatureUint8Array)    -> Uint8Array: the CSR (the page has
//	                                       WebCrypto verify the signature first)
//	importKey(pkcs8Uint8Array)          -> undefined; the key for pack (the array
//	                                       is wiped; it must be the key of csrInfo's SPKI)
//	pack(leafDER, chainDERArray, password, mode) -> Uint8Array (.p12); the key is
//	                                       zeroed and dropped on success
//	drop()                              -> undefined; zeroes and drops the key
//
// There is no pure-Go key generation: crypto/rsa's key generation and
// signing would add 36 kB (brotli) to the module for browsers without
// WebCrypto, which the page instead tells to use a current browser over
// https (docs/keygen-notes.md).
//
// and certdeskKeyGen.ready = true, then fires "certdeskKeyGenReady" on window.
// A rejected Promise carries an Error whose `code` is one of the strings in
// errorCode, for the page to show a translated message. Key material is never
// logged and never handed to JavaScript.
//
// Build: scripts/wasm.sh (GOOS=js GOARCH=wasm, flags in docs/keygen-notes.md).
package main

import (
	"crypto/rsa"
	"errors"
	"sync"
	"syscall/js"

	"certdesk/wasm/keygen"
)

var (
	mu  sync.Mutex
	key *rsa.PrivateKey // the only reference to the private key
)

func setKey(k *rsa.PrivateKey) {
	mu.Lock()
	defer mu.Unlock()
	if key != nil && key != k {
		keygen.Zero(key)
	}
	key = k
}

func dropKey() {
	setKey(nil)
}

// errorCode maps errors to stable codes the page translates.
func errorCode(err error) string {
	switch {
	case errors.Is(err, keygen.ErrPasswordEmpty):
		return "password-empty"
	case errors.Is(err, keygen.ErrPasswordTooShort):
		return "password-too-short"
	case errors.Is(err, keygen.ErrPasswordChars):
		return "password-chars"
	case errors.Is(err, keygen.ErrMode):
		return "mode"
	case errors.Is(err, keygen.ErrKeyMismatch):
		return "key-mismatch"
	case errors.Is(err, keygen.ErrCertificate):
		return "certificate"
	case errors.Is(err, keygen.ErrNoKey):
		return "no-key"
	case errors.Is(err, keygen.ErrPKCS8), errors.Is(err, keygen.ErrNotRSA2048):
		return "bad-key"
	case errors.Is(err, keygen.ErrEmail):
		return "email"
	case errors.Is(err, errArgs):
		return "arguments"
	}
	return "failed"
}

var errArgs = errors.New("keygen: wrong arguments")

func jsError(err error) js.Value {
	e := js.Global().Get("Error").New(err.Error())
	e.Set("code", errorCode(err))
	return e
}

// promise runs fn in a goroutine and settles a new Promise with its result.
// (Go on wasm is single-threaded: the work still runs on the page's thread,
// but the call returns at once, so the page can paint its progress first.)
func promise(fn func() (any, error)) js.Value {
	executor := js.FuncOf(func(this js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			v, err := fn()
			if err != nil {
				reject.Invoke(jsError(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	p := js.Global().Get("Promise").New(executor)
	executor.Release() // the executor ran synchronously inside New
	return p
}

func isString(v js.Value) bool { return v.Type() == js.TypeString }

func pack(this js.Value, args []js.Value) any {
	if len(args) < 4 || !js.Global().Get("Array").Call("isArray", args[1]).Bool() ||
		!isString(args[2]) || !isString(args[3]) {
		return promise(func() (any, error) { return nil, errArgs })
	}
	leaf, ok := bytesArg(args[0])
	if !ok {
		return promise(func() (any, error) { return nil, errArgs })
	}
	n := args[1].Length()
	chain := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		c, ok := bytesArg(args[1].Index(i))
		if !ok {
			return promise(func() (any, error) { return nil, errArgs })
		}
		chain = append(chain, c)
	}
	password, mode := args[2].String(), args[3].String()
	return promise(func() (any, error) {
		mu.Lock()
		k := key
		mu.Unlock()
		p12, err := keygen.PKCS12(k, leaf, chain, password, mode)
		if err != nil {
			// The key stays for a retry (e.g. a longer password); the page
			// calls drop() when it gives up.
			return nil, err
		}
		out := toJS(p12)
		clear(p12)
		dropKey()
		return out, nil
	})
}

// The WebCrypto path signs in the browser: csrInfo returns the bytes to
// sign for the key's public half, csrAssemble checks the browser's
// signature and returns the CSR, importKey then hands the private key to
// the module for the PKCS#12 (it must be the key the CSR was made for).
var pending struct {
	sync.Mutex
	pub  *rsa.PublicKey
	info []byte
}

func toJS(b []byte) js.Value {
	out := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(out, b)
	return out
}

func bytesArg(v js.Value) ([]byte, bool) {
	if !v.InstanceOf(js.Global().Get("Uint8Array")) {
		return nil, false
	}
	b := make([]byte, v.Get("length").Int())
	js.CopyBytesToGo(b, v)
	return b, true
}

// csrInfo(email, spkiUint8Array) -> Uint8Array: the CertificationRequestInfo to sign.
func csrInfo(this js.Value, args []js.Value) any {
	if len(args) < 2 || !isString(args[0]) {
		return promise(func() (any, error) { return nil, errArgs })
	}
	email := args[0].String()
	spki, ok := bytesArg(args[1])
	if !ok {
		return promise(func() (any, error) { return nil, errArgs })
	}
	return promise(func() (any, error) {
		pub, err := keygen.ParseRSAPublicSPKI(spki)
		if err != nil {
			return nil, err
		}
		info, err := keygen.CSRInfo(pub, email)
		if err != nil {
			return nil, err
		}
		pending.Lock()
		pending.pub, pending.info = pub, info
		pending.Unlock()
		return toJS(info), nil
	})
}

// csrAssemble(signatureUint8Array) -> Uint8Array: the DER CSR.
func csrAssemble(this js.Value, args []js.Value) any {
	if len(args) < 1 {
		return promise(func() (any, error) { return nil, errArgs })
	}
	sig, ok := bytesArg(args[0])
	if !ok {
		return promise(func() (any, error) { return nil, errArgs })
	}
	return promise(func() (any, error) {
		pending.Lock()
		pub, info := pending.pub, pending.info
		pending.Unlock()
		if pub == nil {
			return nil, errArgs
		}
		csr, err := keygen.AssembleCSR(pub, info, sig)
		if err != nil {
			return nil, err
		}
		return toJS(csr), nil
	})
}

// importKey(pkcs8Uint8Array) -> undefined; the array is wiped after import.
func importKey(this js.Value, args []js.Value) any {
	if len(args) < 1 {
		return promise(func() (any, error) { return nil, errArgs })
	}
	der, ok := bytesArg(args[0])
	if !ok {
		return promise(func() (any, error) { return nil, errArgs })
	}
	js.CopyBytesToJS(args[0], make([]byte, len(der)))
	return promise(func() (any, error) {
		defer clear(der)
		k, err := keygen.ImportPKCS8(der)
		if err != nil {
			return nil, err
		}
		pending.Lock()
		pub := pending.pub
		pending.Unlock()
		if pub == nil || pub.N.Cmp(k.N) != 0 || pub.E != k.E {
			keygen.Zero(k)
			return nil, keygen.ErrKeyMismatch
		}
		setKey(k)
		return js.Undefined(), nil
	})
}

func drop(this js.Value, args []js.Value) any {
	dropKey()
	return js.Undefined()
}

func main() {
	api := js.Global().Get("Object").New()
	api.Set("csrInfo", js.FuncOf(csrInfo))
	api.Set("csrAssemble", js.FuncOf(csrAssemble))
	api.Set("importKey", js.FuncOf(importKey))
	api.Set("pack", js.FuncOf(pack))
	api.Set("drop", js.FuncOf(drop))
	api.Set("minPasswordLength", keygen.MinPasswordLength)
	api.Set("ready", true)
	js.Global().Set("certdeskKeyGen", api)
	js.Global().Call("dispatchEvent", js.Global().Get("Event").New("certdeskKeyGenReady"))
	select {} // keep the functions alive for the life of the page
}
