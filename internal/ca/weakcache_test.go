package ca

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"testing"
)

// The memory of keys that passed the weak-key tests never lets a weak key
// through: weak keys are refused however often they come, also right after
// the same modulus with another exponent or a strong key was checked.
func TestWeakKeyMemoryOnlyHoldsPassedKeys(t *testing.T) {
	t.Parallel()
	var weak []*rsa.PublicKey
	for _, f := range []struct {
		name string
		gen  func(*testing.T) []byte
	}{{"fermat.csr.pem", genFermat}, {"smallfactor.csr.pem", genSmallFactor}, {"roca.csr.pem", genROCA}} {
		blk, _ := pem.Decode(fixture(t, f.name, f.gen))
		csr, err := x509.ParseCertificateRequest(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		weak = append(weak, csr.PublicKey.(*rsa.PublicKey))
	}
	strong := subscriberKeys()["rsa2048"].Public().(*rsa.PublicKey)
	for round := 0; round < 3; round++ {
		if err := checkWeakKey(strong); err != nil {
			t.Fatal(err)
		}
		if !strongKeys.has(rsaKeyID(strong)) {
			t.Fatal("a strong key was not remembered")
		}
		for i, k := range weak {
			if checkWeakKey(k) == nil {
				t.Fatalf("round %d: weak key %d accepted", round, i)
			}
			if strongKeys.has(rsaKeyID(k)) {
				t.Fatalf("weak key %d remembered", i)
			}
		}
	}
	// Same modulus, other exponent: another key.
	other := &rsa.PublicKey{N: new(big.Int).Set(strong.N), E: 3}
	if rsaKeyID(other) == rsaKeyID(strong) {
		t.Fatal("the exponent is not part of the key id")
	}
}
