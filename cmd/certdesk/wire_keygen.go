package main

import (
	"certdesk/internal/ordering"
)

// wireKeyGen builds the KeyGen link service (internal/ordering
// LinkService): it sends the KeyGen links when ordering advances a
// recipient without a CSR, and runs the browser CSR exchange through the
// issuance pipeline. pipeline may be nil while issuance is not wired: the
// page then opens but the exchange answers 500 and a new link cannot
// replace an issued certificate.
//
// In wire(), after a.ordering and the pipeline exist:
//
//	a.keygen = wireKeyGen(a, pipeline)
//	a.ordering.KeyGen = a.keygen
//
// and in deps(): d.KeyGen = a.keygen (field keygen *ordering.LinkService on app).
func wireKeyGen(a *app, pipeline *ordering.Pipeline) *ordering.LinkService {
	ks := &ordering.LinkService{Store: a.db, Clock: a.clock, BaseURL: a.cfg.BaseURL, Log: a.log}
	if pipeline != nil {
		ks.Exchanger = pipeline
	}
	if a.mailer != nil {
		ks.Mail = a.mailer
	}
	return ks
}
