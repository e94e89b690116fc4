package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"certdesk/internal/billing"
	"certdesk/internal/portal"
	"certdesk/store"
)

const contractUsage = `usage:
  certdesk contract set --account NAME --reference REF --limit AMOUNT [--price PRODUCT=AMOUNT ...] [--inactive]
  certdesk contract show --account NAME
AMOUNT is in euro ("5000", "49.50"); PRODUCT is an API product id (secure_email_sponsor, ...).
Products without --price are charged at their list price. Setting a contract replaces the old one.`

// priceFlags collects repeated --price PRODUCT=AMOUNT flags.
type priceFlags map[portal.ProductID]int64

func (p priceFlags) String() string { return fmt.Sprint(map[portal.ProductID]int64(p)) }

func (p priceFlags) Set(v string) error {
	id, amount, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("--price %q: want PRODUCT=AMOUNT", v)
	}
	prod, known := portal.ProductByID(portal.ProductID(strings.TrimSpace(id)))
	if !known {
		return fmt.Errorf("--price %q: unknown product %q", v, id)
	}
	cents, ok := billing.ParseEuro(amount)
	if !ok {
		return fmt.Errorf("--price %q: %q is not an amount in euro", v, amount)
	}
	p[prod.ID] = cents
	return nil
}

// cmdContract sets or shows a customer account's contract terms (payment
// method "contract": a price list and a limit; usage is recorded at
// issuance). CA staff run it on the server, like `user add`.
func cmdContract(args []string) error {
	return runContract(args, os.Stdout)
}

func runContract(args []string, out io.Writer) error {
	if len(args) == 0 || (args[0] != "set" && args[0] != "show") {
		return errors.New(contractUsage)
	}
	var cfg Config
	var account, reference, limit string
	var inactive bool
	prices := priceFlags{}
	fs := flag.NewFlagSet("contract "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	commonFlags(fs, &cfg)
	fs.StringVar(&account, "account", "", "customer account name")
	if args[0] == "set" {
		fs.StringVar(&reference, "reference", "", "contract number shown to the customer")
		fs.StringVar(&limit, "limit", "", "the most the account may commit, in euro")
		fs.Var(prices, "price", "PRODUCT=AMOUNT, price per certificate per year (repeatable)")
		fs.BoolVar(&inactive, "inactive", false, "keep the contract but do not offer it")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w\n%s", err, contractUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected %q\n%s", fs.Arg(0), contractUsage)
	}
	if strings.TrimSpace(account) == "" {
		return errors.New("--account is required\n" + contractUsage)
	}
	var limitCents int64
	if args[0] == "set" {
		if strings.TrimSpace(reference) == "" || len(reference) > 100 {
			return errors.New("--reference is required (at most 100 characters)\n" + contractUsage)
		}
		var ok bool
		if limitCents, ok = billing.ParseEuro(limit); !ok {
			return fmt.Errorf("--limit %q is not an amount in euro\n%s", limit, contractUsage)
		}
	}
	ctx := context.Background()
	db, err := openStore(ctx, &cfg, portal.SystemClock{})
	if err != nil {
		return err
	}
	defer db.Close()
	acct, err := db.AccountByName(ctx, account)
	if portal.ErrorCode(err) == portal.ENotFound {
		return fmt.Errorf("no customer account %q", account)
	}
	if err != nil {
		return err
	}
	svc := billing.NewService(db, billing.NewTestGateway(portal.SystemClock{}), portal.SystemClock{})
	if args[0] == "set" {
		c := billing.Contract{AccountID: acct.ID, Reference: strings.TrimSpace(reference), Active: !inactive,
			LimitCents: limitCents, Prices: prices}
		if err := svc.SetContract(ctx, c); err != nil {
			return errors.New(portal.ErrorMessage(err))
		}
		_ = db.Audit(ctx, nil, store.AuditEntry{Actor: "cli", Action: "contract.set", ObjectType: "account", ObjectID: acct.ID,
			AccountID: acct.ID, Detail: fmt.Sprintf("%s, limit %s, active %t", c.Reference, billing.FormatEuro(c.LimitCents), c.Active)})
	}
	st, err := svc.Contract(ctx, acct.ID)
	if err != nil {
		return err
	}
	if st == nil {
		fmt.Fprintf(out, "%s has no contract.\n", acct.Name)
		return nil
	}
	state := "active"
	if !st.Active {
		state = "inactive"
	}
	fmt.Fprintf(out, "%s: contract %s (%s), limit %s, used %s, committed %s, remaining %s\n", acct.Name, st.Reference, state,
		billing.FormatEuro(st.LimitCents), billing.FormatEuro(st.UsedCents), billing.FormatEuro(st.CommittedCents),
		billing.FormatEuro(st.RemainingCents))
	ids := make([]string, 0, len(st.Prices))
	for id := range st.Prices {
		ids = append(ids, string(id))
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(out, "  %s: %s per certificate per year\n", id, billing.FormatEuro(st.Prices[portal.ProductID(id)]))
	}
	return nil
}
