// Package ca is certdesk's certificate authority core: the CA hierarchy,
// the CSR intake policy, one SBR certificate profile per product,
// pre-issuance linting, CRLs, OCSP and PKCS#7 chains. It imports the
// standard library, certdesk/internal/portal, golang.org/x/crypto/ocsp and
// zlint/zcrypto only.
//
// # Hierarchy
//
// Init makes a P-384 root (self-signed, SBR 7.1.2.1) and an issuing CA of
// key type rsa2048 (default), p256 or p384 (SBR 7.1.2.2: EKU
// emailProtection + clientAuth, pathLen 0, keyCertSign + cRLSign +
// digitalSignature because it signs its own OCSP responses, CRL DP and
// caIssuers to the root over HTTP, anyPolicy). Files in the CA directory:
// root.crt, root.key, issuing.crt, issuing.key (keys PKCS#8 PEM, 0600).
// URLs below Config.BaseURL (http only, SBR 7.1.2.3 b/c):
//
//	<base>/crl/<IssuerID>.crl   CRL of the issuing CA (DER)   -> Authority.CRL
//	<base>/crl/<RootID>.crl     CRL of the root (DER)         -> Authority.RootCRL
//	<base>/ocsp                 OCSP GET/POST                 -> Authority.OCSPHandler
//	<base>/ca/issuing.crt       issuing CA certificate (DER)  -> Authority.IssuingDER
//	<base>/ca/root.crt          root certificate (DER)        -> Authority.RootDER
//
// # Product profiles
//
// From portal.Products (SBR 7.1.6.1; the legacy generation is not used).
// Every subscriber certificate has exactly one reserved policy OID, SAN
// rfc822Name for every address, CRL DP and AIA (OCSP + caIssuers) over HTTP,
// AKI and SKI, basicConstraints cA=false, at most 825 days (SBR 6.3.2).
//
//	product                        type / generation           policy            EKU                         subject
//	secure_email_mailbox           Mailbox-validated strict    2.23.140.1.5.1.3  emailProtection             CN = email
//	secure_email_sponsor           Sponsor-validated strict    2.23.140.1.5.3.3  emailProtection             CN = name or email, givenName, surname, O, organizationIdentifier, C
//	secure_email_organization      Organization-valid. strict  2.23.140.1.5.2.3  emailProtection             CN = email or O, O, organizationIdentifier, C
//	client_premium                 Sponsor-validated multipur. 2.23.140.1.5.3.2  emailProtection, clientAuth CN = name or email, givenName, surname, O, organizationIdentifier, C
//	client_email_security_plus     Mailbox-validated multipur. 2.23.140.1.5.1.2  emailProtection, clientAuth CN = email (the organization owns the domain; not in the subject)
//	client_digital_signature_plus  Sponsor-validated multipur. 2.23.140.1.5.3.2  emailProtection, clientAuth CN = name or email, givenName, surname, O, organizationIdentifier, C
//	client_1                       Mailbox-validated strict    2.23.140.1.5.1.3  emailProtection             CN = email (the organization owns the domain; not in the subject)
//
// Key usage (SBR 7.1.2.3 e), critical:
//
//	dual use, RSA key     digitalSignature, keyEncipherment
//	dual use, ECDSA key   digitalSignature, keyAgreement
//	signing only          digitalSignature, nonRepudiation   (client_digital_signature_plus)
//
// countryName is present when OrgCountry is given; it must match the
// organizationIdentifier's country (SBR 7.1.4.2.2 d, note 1). A CN longer
// than 64 characters is left out rather than cut (RFC 5280 upper bound).
//
// Subscriber keys: RSA 2048/3072/4096 with e = 65537 (not Fermat-weak,
// ROCA-fingerprinted or with a prime factor below 10,000), ECDSA P-256 or
// P-384. Signature hash: RSA issuer SHA-256/384/512 (PKCS#1 v1.5); P-256
// issuer SHA-256 only; P-384 issuer SHA-384 only (SBR 7.1.3.2).
//
// # Lint before signing
//
// Issue builds the template and has x509.CreateCertificate encode it with
// the real issuing CA certificate and a capturing signer that presents the
// CA's public key and signs nothing (tbsCapture): that yields the exact
// tbsCertificate the CA key would sign. The TBS with a static signature
// value (SBR 4.3.1.2 method 2) is parsed with zcrypto and run through
// zlint's CABF_SMIME_BR and RFC5280 lints plus certdesk's own
// (e_certdesk_*: validity <= 825 days, serial entropy, AIA present, no
// duplicate address, SKI present, exactly one SBR policy). Any error,
// warning or fatal finding returns *LintError and nothing is signed with
// the CA key (SBR 4.3.1.2). Otherwise the CA key signs those same TBS
// bytes (signTBS); the signature is verified with the issuing CA's public
// key and the parsed certificate's TBS must equal the linted bytes.
package ca
