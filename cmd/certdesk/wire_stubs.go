package main

import (
	"context"
	"database/sql"

	"certdesk/internal/portal"
)

type txT = *sql.Tx

// noValidator stands in until the validation service is wired: it starts
// no validation and reports no mailbox as validated.
type noValidator struct{}

func (noValidator) SubmitOrgForOrder(context.Context, *sql.Tx, int64, int64, int64) error { return nil }
func (noValidator) StartDomainEmailForOrder(context.Context, *sql.Tx, int64, int64, string, int64, string) error {
	return nil
}
func (noValidator) StartMailboxForOrder(context.Context, *sql.Tx, int64, string, int64, string) error {
	return nil
}
func (noValidator) MailboxValidated(context.Context, portal.Querier, int64, string) (bool, error) {
	return false, nil
}
