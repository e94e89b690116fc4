package billing

import (
	"context"
	"database/sql"

	"certdesk/internal/ordering"
	"certdesk/internal/portal"
)

// ForOrdering adapts a Service to the ordering service's payment ports
// (ordering.Billing and ordering.CardHolder): only the card type differs.
func ForOrdering(s *Service) ordering.Billing { return orderingBilling{s} }

type orderingBilling struct{ *Service }

var _ ordering.CardHolder = orderingBilling{}

func cardInput(card *ordering.Card) *CardInput {
	if card == nil || card.OnFile {
		return nil // the card on file
	}
	return &CardInput{Number: card.Number, Expiry: card.Expiry, CVC: card.CVC, Name: card.Name}
}

func (b orderingBilling) Authorize(ctx context.Context, tx *sql.Tx, accountID, orderID int64, m portal.PaymentMethod, amount int64, card *ordering.Card) (string, error) {
	return b.Service.Authorize(ctx, tx, accountID, orderID, m, amount, cardInput(card))
}

func (b orderingBilling) HoldCard(ctx context.Context, accountID, amount int64, card *ordering.Card) (ordering.CardHold, error) {
	h, err := b.Service.HoldCard(ctx, accountID, amount, cardInput(card))
	return ordering.CardHold(h), err
}

func (b orderingBilling) RecordCardHold(ctx context.Context, tx *sql.Tx, accountID, orderID int64, h ordering.CardHold) (string, error) {
	return b.Service.RecordCardHold(ctx, tx, accountID, orderID, CardHold(h))
}

func (b orderingBilling) ReleaseCardHold(ctx context.Context, h ordering.CardHold) error {
	return b.Service.ReleaseCardHold(ctx, CardHold(h))
}
