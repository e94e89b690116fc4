package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"

	"certdesk/internal/portal"
)

// Profile is the certificate profile of one product: the SBR certificate
// type and generation with everything that follows from them.
type Profile struct {
	Product portal.Product
	// Policy is the one reserved SBR policy OID (SBR 7.1.6.1, 7.1.2.3 a).
	Policy x509.OID
	// ExtKeyUsage: strict emailProtection only; multipurpose adds clientAuth
	// (SBR 7.1.2.3 f: other values MAY be present; zlint is clean with it).
	ExtKeyUsage []x509.ExtKeyUsage
	// OrgInSubject: organizationName, organizationIdentifier (and
	// countryName) are required (SBR 7.1.4.2.4, 7.1.4.2.5).
	OrgInSubject bool
	// PersonalName: givenName/surname present, CN may be the name
	// (sponsor-validated, SBR 7.1.4.2.5 note 2).
	PersonalName bool
	// SigningOnly: digitalSignature + nonRepudiation only.
	SigningOnly bool
}

// ProfileFor returns the profile of a product, or an error when the product
// is inconsistent with the SBR (a legacy generation, an organization in a
// mailbox-validated subject, a personal name outside sponsor-validated).
func ProfileFor(p portal.Product) (Profile, error) {
	pr := Profile{Product: p, OrgInSubject: p.OrgInSubject, PersonalName: p.PersonalName}
	switch p.Generation {
	case portal.Strict:
		pr.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}
	case portal.Multipurpose:
		pr.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageClientAuth}
	default:
		// SBR 7.1.6.1: legacy-generation certificates may no longer be issued.
		return pr, fmt.Errorf("ca: product %s: generation %q is not strict or multipurpose", p.ID, p.Generation)
	}
	switch p.Type {
	case portal.MailboxValidated:
		// SBR 7.1.4.2.3: no organization and no personal name attributes.
		if p.OrgInSubject || p.PersonalName {
			return pr, fmt.Errorf("ca: product %s: a mailbox-validated subject has no organization or personal name (SBR 7.1.4.2.3)", p.ID)
		}
	case portal.OrganizationValidated:
		// SBR 7.1.4.2.4: organizationName and organizationIdentifier SHALL; no
		// givenName/surname.
		if !p.OrgInSubject || p.PersonalName {
			return pr, fmt.Errorf("ca: product %s: an organization-validated subject has the organization and no personal name (SBR 7.1.4.2.4)", p.ID)
		}
	case portal.SponsorValidated:
		// SBR 7.1.4.2.5: organization SHALL; givenName and/or surname SHALL
		// (strict and multipurpose, note 2).
		if !p.OrgInSubject || !p.PersonalName {
			return pr, fmt.Errorf("ca: product %s: a sponsor-validated subject has the organization and a personal name (SBR 7.1.4.2.5)", p.ID)
		}
	default:
		return pr, fmt.Errorf("ca: product %s: unknown certificate type %q", p.ID, p.Type)
	}
	switch p.KeyUsage {
	case portal.DualUse:
	case portal.SigningOnly:
		pr.SigningOnly = true
	default:
		return pr, fmt.Errorf("ca: product %s: unknown key usage %q", p.ID, p.KeyUsage)
	}
	oid, err := x509.OIDFromInts(uint64s(portal.PolicyOID(p.Type, p.Generation)))
	if err != nil {
		return pr, err
	}
	pr.Policy = oid
	return pr, nil
}

// KeyUsage returns the keyUsage bits for a subscriber key (SBR 7.1.2.3 e):
// RSA dual use digitalSignature + keyEncipherment; ECDSA dual use
// digitalSignature + keyAgreement; signing only digitalSignature +
// nonRepudiation (contentCommitment).
func (pr Profile) KeyUsage(pub crypto.PublicKey) x509.KeyUsage {
	if pr.SigningOnly {
		return x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
	}
	if _, ok := pub.(*ecdsa.PublicKey); ok {
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
	}
	return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
}

// ValidateProfiles checks every product of portal.Products against the
// SBR profile rules; Init and Load call it, so a bad catalogue entry stops
// the CA at start instead of at the first issuance.
func ValidateProfiles() error {
	seen := map[portal.ProductID]bool{}
	for _, p := range portal.Products {
		if seen[p.ID] {
			return fmt.Errorf("ca: product %s listed twice", p.ID)
		}
		seen[p.ID] = true
		if _, err := ProfileFor(p); err != nil {
			return err
		}
	}
	return nil
}

func uint64s(in []int) []uint64 {
	out := make([]uint64, len(in))
	for i, v := range in {
		out[i] = uint64(v)
	}
	return out
}
