package main

import (
	"context"

	"certdesk/internal/portal"
	"certdesk/store"
)

// Dev demo data for validation: Example Corp gets the validated
// organization "Example Corp B.V." and the validated domain example.com,
// so `make run` can order at once. Idempotent: nothing is added twice.
func init() {
	devSeeders = append(devSeeders, seedValidation)
}

func seedValidation(ctx context.Context, db *store.DB, a *app, acct portal.Account, admin portal.User) error {
	const legal = "Example Corp B.V."
	now := db.Now()
	orgs, err := db.ListOrgs(ctx, nil, acct.ID)
	if err != nil {
		return err
	}
	var org portal.Organization
	for _, o := range orgs {
		if o.LegalName == legal {
			org = o
		}
	}
	if org.ID == 0 {
		org = portal.Organization{AccountID: acct.ID, LegalName: legal, AssumedName: "Example Corp",
			Address: "Herengracht 1", City: "Amsterdam", PostalCode: "1015 BA", Country: "NL", Phone: "+31 20 555 0100",
			Registration: "NTRNL-12345678",
			OrgContact:   portal.Contact{Name: "Alex Admin", Email: "admin@example.com", Phone: "+31 20 555 0101"},
			TechContact:  portal.Contact{Name: "Tess Tech", Email: "tech@example.com", Phone: "+31 20 555 0102"},
			Status:       portal.OrgDraft, CreatedAt: now}
		if err := db.InsertOrg(ctx, nil, &org, "en"); err != nil {
			return err
		}
	}
	if !org.Current(now) {
		if err := db.SetOrgValidated(ctx, nil, org.ID, now, now.Add(portal.OrgValidationReuse), "dev seed", "demo data"); err != nil {
			return err
		}
	}
	d, err := db.DomainByName(ctx, nil, org.ID, "example.com")
	if portal.ErrorCode(err) == portal.ENotFound {
		d.Domain = portal.Domain{AccountID: acct.ID, OrganizationID: org.ID, Name: "example.com", Method: portal.DCVDNSTXT,
			RandomValue: portal.NewToken(), ValueExpiresAt: now.Add(portal.DomainValueLifetime), CreatedAt: now}
		if err := db.InsertDomain(ctx, nil, &d.Domain, "en"); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if !d.Current(now) {
		return db.SetDomainValidated(ctx, nil, d.ID, now, now.Add(portal.DomainValidationReuse), "dev seed (no check)")
	}
	return nil
}
