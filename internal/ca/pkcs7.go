package ca

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
)

var (
	oidPKCS7Data       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidPKCS7SignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
)

// PKCS#7 / CMS degenerate SignedData ("certs-only", RFC 5652 5.1, RFC 2315
// 9.1): no content, no signers, only certificates.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT, built by hand
}

type encapContentInfo struct {
	ContentType asn1.ObjectIdentifier
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue // SET OF, empty
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue // [0] IMPLICIT SET OF Certificate
	SignerInfos      asn1.RawValue // SET OF, empty
}

// PKCS7Chain encodes certificates (DER, typically leaf, issuing CA, root)
// as a degenerate PKCS#7 SignedData, the ".p7b" format, in DER. Each input
// must parse as a certificate; the order given is kept.
func PKCS7Chain(ders ...[]byte) ([]byte, error) {
	if len(ders) == 0 {
		return nil, errors.New("ca: PKCS7Chain needs at least one certificate")
	}
	for i, d := range ders {
		if _, err := x509.ParseCertificate(d); err != nil {
			return nil, fmt.Errorf("ca: PKCS7Chain: certificate %d: %w", i, err)
		}
	}
	return pkcs7Certs(ders)
}

// PKCS7 is the certificate and its chain as a degenerate PKCS#7
// SignedData (PKCS7Chain), without parsing them again: Issue parsed the
// certificate and the CA's certificates were parsed when it was loaded.
func (is *Issued) PKCS7() ([]byte, error) {
	return pkcs7Certs(append([][]byte{is.DER}, is.Chain...))
}

func pkcs7Certs(ders [][]byte) ([]byte, error) {
	var certs []byte
	for _, d := range ders {
		certs = append(certs, d...)
	}
	emptySet := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: []byte{}}
	sd := signedData{
		Version:          1,
		DigestAlgorithms: emptySet,
		EncapContentInfo: encapContentInfo{ContentType: oidPKCS7Data},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: certs},
		SignerInfos:      emptySet,
	}
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfo{
		ContentType: oidPKCS7SignedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner},
	})
}
