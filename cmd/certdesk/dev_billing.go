package main

import (
	"context"
	"fmt"

	"certdesk/internal/billing"
	"certdesk/internal/portal"
	"certdesk/store"
)

func init() { devSeeders = append(devSeeders, seedDevBilling) }

// seedDevBilling gives Example Corp an active contract (limit €100,000 at
// list prices), so `make run` can order at once, and a Visa test card on
// file (•••• 4242, through the test gateway). Idempotent: an existing
// contract or card is left as it is.
func seedDevBilling(ctx context.Context, db *store.DB, a *app, acct portal.Account, _ portal.User) error {
	clock := portal.Clock(portal.SystemClock{})
	if a != nil && a.clock != nil {
		clock = a.clock
	}
	svc := billing.NewService(db, billing.NewTestGateway(clock), clock)
	if a != nil && a.billing != nil {
		svc = a.billing
	}
	c, err := svc.Contract(ctx, acct.ID)
	if err != nil {
		return err
	}
	if c == nil {
		prices := map[portal.ProductID]int64{}
		for _, p := range portal.Products {
			prices[p.ID] = p.PriceCents
		}
		if err := svc.SetContract(ctx, billing.Contract{AccountID: acct.ID, Reference: "DEV-CONTRACT-1", Active: true,
			LimitCents: 100_000_00, Prices: prices}); err != nil {
			return fmt.Errorf("dev contract: %w", err)
		}
	}
	card, err := svc.CardOnFile(ctx, acct.ID)
	if err != nil {
		return err
	}
	if card == nil || card.Expired(clock.Now()) {
		exp := fmt.Sprintf("12/%02d", (clock.Now().Year()+3)%100)
		if _, err := svc.SaveCard(ctx, acct.ID, billing.CardInput{Number: billing.TestCardVisa, Expiry: exp, CVC: "123",
			Name: "Example Corp"}); err != nil {
			return fmt.Errorf("dev card: %w", err)
		}
	}
	return nil
}
