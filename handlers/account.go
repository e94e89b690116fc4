package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"certdesk/internal/billing"
	"certdesk/internal/portal"
	"certdesk/views"
)

func init() {
	registerRoutes(func(s *Server) {
		e := s.Echo
		admin := requireRole(portal.RoleAccountAdmin)
		e.GET("/account", s.accountPage, s.requireUser, requireCustomer)
		e.POST("/account/apikeys", s.apiKeyCreate, s.requireUser, admin)
		e.POST("/account/apikeys/:id/revoke", s.apiKeyRevoke, s.requireUser, admin)
		e.GET("/account/card", s.cardPage, s.requireUser, admin)
		e.POST("/account/card", s.cardSave, s.requireUser, admin)
		e.GET("/account/deposit", s.depositPage, s.requireUser, requireCustomer)
		e.POST("/account/deposit", s.deposit, s.requireUser, requireCustomer)
	})
}

// accountLedgerRows is how many ledger rows the account page shows.
const accountLedgerRows = 50

// billingService is the full billing service: the one wired in Deps when
// it is a *billing.Service, else one over the same database with the
// built-in test gateway (the test gateway is stateless, so both agree).
func (s *Server) billingService() *billing.Service {
	if b, ok := s.Billing.(*billing.Service); ok && b != nil {
		return b
	}
	return billing.NewService(s.DB, billing.NewTestGateway(s.Clock), s.Clock)
}

func fmtWhen(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04") + " UTC"
}

// accountVM gathers the account page's content.
func (s *Server) accountVM(c echo.Context) (views.AccountVM, error) {
	ctx := c.Request().Context()
	u := currentUser(c)
	lang := localizer(c).Lang
	money := func(v int64) string { return billing.FormatEuroLang(v, lang) }
	vm := views.AccountVM{IsAdmin: u.IsAdmin(), KeyForm: views.NewForm()}
	a, err := s.DB.AccountByID(ctx, u.AccountID)
	if err != nil {
		return vm, err
	}
	vm.Name = a.Name
	users, err := s.DB.UsersByAccount(ctx, u.AccountID)
	if err != nil {
		return vm, err
	}
	for _, x := range users {
		vm.Users = append(vm.Users, views.AccountUserVM{Name: x.Name, Email: x.Email, Role: string(x.Role)})
	}
	keys, err := s.DB.APIKeysByAccount(ctx, u.AccountID)
	if err != nil {
		return vm, err
	}
	for _, k := range keys {
		vm.Keys = append(vm.Keys, views.APIKeyVM{ID: k.ID, Name: k.Name, Prefix: k.Prefix, UserEmail: k.UserEmail,
			Created: fmtWhen(k.CreatedAt), LastUsed: fmtWhen(k.LastUsedAt), Revoked: fmtWhen(k.RevokedAt)})
	}
	bs := s.billingService()
	bal, err := bs.Balance(ctx, u.AccountID)
	if err != nil {
		return vm, err
	}
	vm.Balance, vm.Held, vm.Available, vm.HasHeld = money(bal.BalanceCents), money(bal.HeldCents), money(bal.AvailableCents), bal.HeldCents > 0
	ct, err := bs.Contract(ctx, u.AccountID)
	if err != nil {
		return vm, err
	}
	if ct != nil {
		cvm := &views.ContractVM{Reference: ct.Reference, Active: ct.Active, Limit: money(ct.LimitCents), Used: money(ct.UsedCents),
			Committed: money(ct.CommittedCents), Remaining: money(max(ct.RemainingCents, 0))}
		for _, p := range portal.Products {
			if price, ok := ct.Prices[p.ID]; ok {
				cvm.Prices = append(cvm.Prices, views.ContractPriceVM{Product: string(p.ID), Price: money(price), List: money(p.PriceCents)})
			}
		}
		vm.Contract = cvm
	}
	card, err := bs.CardOnFile(ctx, u.AccountID)
	if err != nil {
		return vm, err
	}
	if card != nil {
		vm.Card = &views.CardVM{Label: card.Label(), Expiry: fmt.Sprintf("%02d/%d", card.ExpMonth, card.ExpYear), Expired: card.Expired(s.Clock.Now())}
	}
	rows, err := bs.Ledger(ctx, u.AccountID, accountLedgerRows+1)
	if err != nil {
		return vm, err
	}
	if len(rows) > accountLedgerRows {
		rows, vm.LedgerMore = rows[:accountLedgerRows], true
	}
	for _, r := range rows {
		vm.Ledger = append(vm.Ledger, views.LedgerRowVM{Date: fmtWhen(r.CreatedAt), Kind: string(r.Kind), Method: string(r.Method),
			OrderID: r.OrderID, Amount: money(r.AmountCents), Detail: r.Detail, Ref: r.GatewayRef})
	}
	return vm, nil
}

func (s *Server) accountPage(c echo.Context) error {
	vm, err := s.accountVM(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.Account(s.page(c, "account.title"), vm))
}

func (s *Server) apiKeyCreate(c echo.Context) error {
	u := currentUser(c)
	name := strings.TrimSpace(c.FormValue("name"))
	secret, k, err := s.DB.CreateAPIKey(c.Request().Context(), u.AccountID, u.ID, name)
	vm, verr := s.accountVM(c)
	if verr != nil {
		return verr
	}
	if err != nil {
		if !isFormError(err) {
			return err
		}
		vm.KeyForm.Values["name"] = name
		formErrors(c, &vm.KeyForm, err)
		return render(c, StatusFor(err), views.Account(s.page(c, "account.title"), vm))
	}
	_ = s.DB.Audit(c.Request().Context(), nil, auditFor(c, u, "apikey.created", "api_key", k.ID, u.AccountID, k.Prefix))
	// The key is shown this once, in this response (render sets
	// Cache-Control: no-store); only its hash is kept.
	vm.NewKey, vm.NewKeyName = secret, k.Name
	return render(c, http.StatusCreated, views.Account(s.page(c, "account.title"), vm))
}

func (s *Server) apiKeyRevoke(c echo.Context) error {
	u := currentUser(c)
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return portal.Errorf(portal.ENotFound, "API key not found")
	}
	k, err := s.DB.RevokeAPIKey(c.Request().Context(), u.AccountID, id)
	if err != nil {
		return err
	}
	_ = s.DB.Audit(c.Request().Context(), nil, auditFor(c, u, "apikey.revoked", "api_key", k.ID, u.AccountID, k.Prefix))
	flash(c, "account.apikey_revoked_flash")
	return c.Redirect(http.StatusSeeOther, "/account")
}

// cardFields are the card inputs of the deposit and card forms.
var cardFields = []string{billing.FieldCardName, billing.FieldCardNumber, billing.FieldCardExpiry, billing.FieldCardCVC}

func cardInput(c echo.Context) billing.CardInput {
	return billing.CardInput{Number: c.FormValue(billing.FieldCardNumber), Expiry: c.FormValue(billing.FieldCardExpiry),
		CVC: c.FormValue(billing.FieldCardCVC), Name: c.FormValue(billing.FieldCardName)}
}

// forgetCard drops the card number and the security code from a form
// shown again: they are never sent back to the browser (the order form
// does the same); the person types them again.
func forgetCard(f *views.Form) {
	f.Values[billing.FieldCardNumber], f.Values[billing.FieldCardCVC] = "", ""
}

func (s *Server) cardPage(c echo.Context) error {
	return s.renderCardForm(c, http.StatusOK, views.NewForm())
}

func (s *Server) renderCardForm(c echo.Context, status int, f views.Form) error {
	vm := views.CardFormVM{Form: f}
	if label, err := s.billingService().CardOnFileLabel(c.Request().Context(), currentUser(c).AccountID); err == nil {
		vm.Current = label
	}
	forgetCard(&vm.Form)
	return render(c, status, views.CardForm(s.page(c, "cardform.title"), vm))
}

func (s *Server) cardSave(c echo.Context) error {
	u := currentUser(c)
	f := views.NewForm()
	f.Values = formValues(c, cardFields...)
	sc, err := s.billingService().SaveCard(c.Request().Context(), u.AccountID, cardInput(c))
	if err != nil {
		if !isFormError(err) {
			return err
		}
		formErrors(c, &f, err)
		return s.renderCardForm(c, StatusFor(err), f)
	}
	_ = s.DB.Audit(c.Request().Context(), nil, auditFor(c, u, "billing.card_saved", "account", u.AccountID, u.AccountID, sc.Label()))
	flash(c, "account.card_saved")
	return c.Redirect(http.StatusSeeOther, "/account")
}

// safeReturn accepts only a local path (with an optional query) to come
// back to after a deposit: no scheme, no host, no "//" or backslash
// tricks, no control characters. Anything else is dropped (no open
// redirect).
func safeReturn(raw string) string {
	if raw == "" || len(raw) > 2048 || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") || strings.ContainsAny(raw, "\\") {
		return ""
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f {
			return ""
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return ""
	}
	return raw
}

func (s *Server) depositVM(c echo.Context, f views.Form) (views.DepositVM, error) {
	ctx := c.Request().Context()
	u := currentUser(c)
	lang := localizer(c).Lang
	bs := s.billingService()
	vm := views.DepositVM{Form: f, Min: billing.FormatEuroLang(billing.MinDepositCents, lang),
		Max: billing.FormatEuroLang(billing.MaxDepositCents, lang), CanSave: u.IsAdmin()}
	bal, err := bs.Balance(ctx, u.AccountID)
	if err != nil {
		return vm, err
	}
	vm.Balance = billing.FormatEuroLang(bal.AvailableCents, lang)
	if vm.CardOnFile, err = bs.CardOnFileLabel(ctx, u.AccountID); err != nil {
		return vm, err
	}
	forgetCard(&vm.Form)
	return vm, nil
}

func (s *Server) depositPage(c echo.Context) error {
	f := views.NewForm()
	vm, err := s.depositVM(c, f)
	if err != nil {
		return err
	}
	vm.Return = safeReturn(c.QueryParam("return"))
	return render(c, http.StatusOK, views.Deposit(s.page(c, "deposit.title"), vm))
}

func (s *Server) deposit(c echo.Context) error {
	ctx := c.Request().Context()
	u := currentUser(c)
	f := views.NewForm()
	f.Values = formValues(c, append([]string{"amount", "card_source", "save_card"}, cardFields...)...)
	ret := safeReturn(c.FormValue("return"))
	bs := s.billingService()
	fail := func(err error) error {
		if !isFormError(err) {
			return err
		}
		formErrors(c, &f, err)
		vm, verr := s.depositVM(c, f)
		if verr != nil {
			return verr
		}
		vm.Return = ret
		return render(c, StatusFor(err), views.Deposit(s.page(c, "deposit.title"), vm))
	}
	amount, ok := billing.ParseEuro(f.Values["amount"])
	if !ok {
		return fail(portal.FieldError(billing.FieldAmount, "deposit.amount_invalid", "Enter an amount in euro, for example 250 or 250.00."))
	}
	if err := billing.CheckDepositAmount(amount); err != nil {
		return fail(err)
	}
	var card *billing.CardInput
	if f.Values["card_source"] != "on_file" {
		in := cardInput(c)
		card = &in
		if f.Values["save_card"] == "1" && u.IsAdmin() {
			sc, err := bs.SaveCard(ctx, u.AccountID, in)
			if err != nil {
				return fail(err)
			}
			_ = s.DB.Audit(ctx, nil, auditFor(c, u, "billing.card_saved", "account", u.AccountID, u.AccountID, sc.Label()))
			card = nil // charge the card just saved
		}
	}
	e, err := bs.Deposit(ctx, u.AccountID, amount, card)
	if err != nil {
		return fail(err)
	}
	_ = s.DB.Audit(ctx, nil, auditFor(c, u, "billing.deposit", "account", u.AccountID, u.AccountID,
		billing.FormatEuro(e.AmountCents)+" "+e.Detail))
	flash(c, "deposit.done")
	if ret != "" {
		return c.Redirect(http.StatusSeeOther, ret)
	}
	return c.Redirect(http.StatusSeeOther, "/account")
}
