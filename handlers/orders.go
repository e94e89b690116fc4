package handlers

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"certdesk/internal/billing"
	"certdesk/internal/i18n"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/store"
	"certdesk/views"
)

// BillingInfo is what the order pages show about payment.
type BillingInfo interface {
	PriceListFor(ctx context.Context, accountID int64) billing.PriceList
	DefaultMethod(ctx context.Context, accountID int64) portal.PaymentMethod
	BalanceCents(ctx context.Context, accountID int64) (int64, error)
	CardOnFileLabel(ctx context.Context, accountID int64) (string, error)
	HasContract(ctx context.Context, accountID int64) (bool, error)
}

func init() {
	registerRoutes(func(s *Server) {
		e := s.Echo
		e.GET("/orders", s.ordersList, s.requireUser, requireCustomer)
		e.GET("/orders/new", s.orderForm, s.requireUser, requireCustomer)
		e.POST("/orders/new", s.orderSubmit, s.requireUser, requireCustomer)
		e.GET("/orders/:id", s.orderPage, s.requireUser, requireCustomer)
		e.POST("/orders/:id/cancel", s.orderCancel, s.requireUser, requireCustomer)
	})
}

// orderFields are the order form's plain fields (recipients apart).
var orderFields = []string{"product", "organization", "signature_hash", "validity", "custom_date", "custom_days",
	"auto_renew", "additional_emails", "payment_method", "card_name", "card_number", "card_expiry", "card_cvc",
	"card_on_file", "agree", "idempotency_key"}

// maxCSRUpload bounds an uploaded CSR file (the intake policy allows 16 KiB).
const maxCSRUpload = 64 << 10

func euro(cents int64) string { return fmt.Sprintf("€%d.%02d", cents/100, cents%100) }

// orderDraft is the order form's state: its fields and its recipients.
type orderDraft struct {
	Values     map[string]string    `json:"values"`
	Recipients []views.RecipientRow `json:"recipients"`
}

// bindOrderForm reads the order form, uploads included.
func bindOrderForm(c echo.Context) (orderDraft, error) {
	d := orderDraft{Values: formValues(c, orderFields...)}
	// never keep card number and CVC in a re-rendered form or a draft
	n, _ := strconv.Atoi(c.FormValue("recipients"))
	if n < 1 {
		n = 1
	}
	if n > ordering.MaxRecipients {
		n = ordering.MaxRecipients
	}
	for i := 0; i < n; i++ {
		r := views.RecipientRow{Index: i}
		r.CNFromName = c.FormValue(r.F("cn")) == "name"
		r.Name = c.FormValue(r.F("name"))
		r.Email = strings.TrimSpace(c.FormValue(r.F("email")))
		r.HasCSR = c.FormValue(r.F("csrmode")) == "csr"
		r.CSR = c.FormValue(r.F("csr"))
		if fh, err := c.FormFile(r.F("csrfile")); err == nil && fh.Size > 0 {
			if fh.Size > maxCSRUpload {
				r.CSR = strings.Repeat("x", 16<<10+1) // the intake policy reports "too large"
			} else if f, err := fh.Open(); err == nil {
				b, _ := io.ReadAll(io.LimitReader(f, maxCSRUpload))
				f.Close()
				if !strings.Contains(string(b), "-----BEGIN") {
					b = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: b})
				}
				r.CSR = string(b)
			}
			r.HasCSR = true
		}
		d.Recipients = append(d.Recipients, r)
	}
	return d, nil
}

func (d orderDraft) input(lang string) ordering.Input {
	v := d.Values
	org, _ := strconv.ParseInt(v["organization"], 10, 64)
	in := ordering.Input{
		Product: portal.ProductID(v["product"]), OrganizationID: org, SignatureHash: portal.SignatureHash(v["signature_hash"]),
		Validity: v["validity"], CustomDate: v["custom_date"], CustomDays: v["custom_days"], AutoRenew: v["auto_renew"] == "renew",
		AdditionalEmails: v["additional_emails"], PaymentMethod: portal.PaymentMethod(v["payment_method"]),
		Card:   ordering.Card{Number: v["card_number"], Expiry: v["card_expiry"], CVC: v["card_cvc"], Name: v["card_name"], OnFile: v["card_on_file"] == "1"},
		Agreed: v["agree"] == "1", IdempotencyKey: v["idempotency_key"], Lang: lang,
	}
	for _, r := range d.Recipients {
		in.Recipients = append(in.Recipients, ordering.RecipientInput{CNFromName: r.CNFromName, Name: r.Name, Email: r.Email, HasCSR: r.HasCSR, CSR: r.CSR})
	}
	return in
}

func (s *Server) orderForm(c echo.Context) error {
	u := currentUser(c)
	d := orderDraft{Values: map[string]string{}}
	if tok := c.QueryParam("draft"); tok != "" {
		body, err := s.DB.Draft(c.Request().Context(), u.ID, tok)
		if err == nil {
			_ = json.Unmarshal([]byte(body), &d)
		}
	}
	if d.Values["product"] == "" {
		d.Values["product"] = string(portal.ProductBusiness)
		if p := c.QueryParam("product"); p != "" {
			d.Values["product"] = p
		}
	}
	if d.Values["payment_method"] == "" {
		d.Values["payment_method"] = string(s.Billing.DefaultMethod(c.Request().Context(), u.AccountID))
	}
	if len(d.Recipients) == 0 {
		prod, _ := portal.ProductByID(portal.ProductID(d.Values["product"]))
		d.Recipients = []views.RecipientRow{{CNFromName: prod.PersonalName}}
	}
	f := views.NewForm()
	f.Values = d.Values
	return s.renderOrderForm(c, http.StatusOK, f, d.Recipients)
}

func (s *Server) renderOrderForm(c echo.Context, status int, f views.Form, rows []views.RecipientRow) error {
	ctx := c.Request().Context()
	u := currentUser(c)
	l := localizer(c)
	now := s.Clock.Now()
	if f.Values["idempotency_key"] == "" {
		f.Values["idempotency_key"] = portal.NewToken()
	}
	// the card number and CVC are never sent back to the browser
	f.Values["card_number"], f.Values["card_cvc"] = "", ""
	vm := views.OrderFormVM{Form: f, Recipients: rows, IdemKey: f.Values["idempotency_key"], Product: f.Values["product"],
		Agreement: l.T("order.agreement_text")}
	days := 365
	if end, err := ordering.Period(now, f.Values["validity"], f.Values["custom_date"], f.Values["custom_days"]); err == nil {
		days = ordering.Days(now, end)
		vm.Plan = ordering.IsPlan(now, end)
	}
	prices := s.Billing.PriceListFor(ctx, u.AccountID)
	for _, p := range portal.Products {
		per, _ := prices.Quote(p, 1, 365)
		vm.Products = append(vm.Products, views.ProductOption{Value: string(p.ID), Label: l.T("product." + string(p.ID)),
			Legacy: p.Legacy, NeedsOrg: p.NeedsOrganization, PersonalName: p.PersonalName, PriceCents: per})
		if string(p.ID) == vm.Product {
			vm.Legacy, vm.NeedsOrg, vm.PersonalName = p.Legacy, p.NeedsOrganization, p.PersonalName
			per, total := prices.Quote(p, len(rows), days)
			vm.PerCert, vm.Total = euro(per), euro(total)
		}
	}
	orgs, err := s.DB.OrgsForAccount(ctx, nil, u.AccountID)
	if err != nil {
		return err
	}
	for _, o := range orgs {
		opt := views.Option{Value: strconv.FormatInt(o.ID, 10), Label: o.LegalName}
		switch st := o.State(now); st {
		case portal.OrgValidated:
			vm.CurrentOrgs = append(vm.CurrentOrgs, opt)
		case portal.OrgRejected:
		default:
			opt.Note = l.T("org.status." + string(st))
			vm.OtherOrgs = append(vm.OtherOrgs, opt)
		}
	}
	if bal, err := s.Billing.BalanceCents(ctx, u.AccountID); err == nil {
		vm.Balance = euro(bal)
	}
	vm.CardOnFile, _ = s.Billing.CardOnFileLabel(ctx, u.AccountID)
	vm.ContractActive, _ = s.Billing.HasContract(ctx, u.AccountID)
	return render(c, status, views.OrderForm(s.page(c, "order.title"), vm))
}

func (s *Server) orderSubmit(c echo.Context) error {
	u := currentUser(c)
	d, err := bindOrderForm(c)
	if err != nil {
		return err
	}
	f := views.NewForm()
	f.Values = d.Values
	action := c.FormValue("action")
	switch {
	case action == "add":
		if len(d.Recipients) >= ordering.MaxRecipients {
			f.Errors["recipients"] = localizer(c).T("order.recipients_too_many")
		} else {
			prod, _ := portal.ProductByID(portal.ProductID(d.Values["product"]))
			d.Recipients = append(d.Recipients, views.RecipientRow{Index: len(d.Recipients), CNFromName: prod.PersonalName})
		}
		s.dropPrivateKeys(c, &f, d.Recipients)
		return s.renderOrderForm(c, http.StatusOK, f, d.Recipients)
	case strings.HasPrefix(action, "remove:"):
		i, _ := strconv.Atoi(strings.TrimPrefix(action, "remove:"))
		if i >= 0 && i < len(d.Recipients) && len(d.Recipients) > 1 {
			d.Recipients = append(d.Recipients[:i], d.Recipients[i+1:]...)
			for j := range d.Recipients {
				d.Recipients[j].Index = j
			}
		}
		s.dropPrivateKeys(c, &f, d.Recipients)
		return s.renderOrderForm(c, http.StatusOK, f, d.Recipients)
	case action == "deposit":
		tok := portal.NewToken()
		s.dropPrivateKeys(c, &f, d.Recipients)
		d.Values["card_number"], d.Values["card_cvc"] = "", ""
		body, _ := json.Marshal(d)
		if err := s.DB.SaveDraft(c.Request().Context(), u.ID, tok, string(body)); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/account/deposit?return="+url.QueryEscape("/orders/new?draft="+tok))
	}
	lang := localizer(c).Lang
	if u.Lang == "" {
		// The order's later emails (certificate issued, KeyGen link) are
		// written in the requestor's language (User.Lang), which only the
		// language switch set: a requestor whose browser asked for Dutch
		// ordered on Dutch pages and got English emails. An order placed
		// without a choice keeps the language it was placed in.
		if err := s.DB.SetUserLang(c.Request().Context(), u.ID, lang); err != nil {
			return err
		}
		u.Lang = lang
	}
	o, err := s.Ordering.Submit(c.Request().Context(), *u, d.input(lang))
	if err != nil {
		if !isFormError(err) {
			return err
		}
		formErrors(c, &f, err)
		for _, fe := range portal.AsFieldErrors(err) {
			for i := range d.Recipients {
				if fe.Key == keyCSRPrivateKey && fe.Field == d.Recipients[i].F("csr") {
					d.Recipients[i].CSR = "" // never sent back to the browser
				}
			}
		}
		return s.renderOrderForm(c, StatusFor(err), f, d.Recipients)
	}
	_ = s.DB.Audit(c.Request().Context(), nil, auditFor(c, u, "order.submitted", "order", o.ID, u.AccountID, string(o.Product)))
	flash(c, "orderpage.created")
	return c.Redirect(http.StatusSeeOther, "/orders/"+strconv.FormatInt(o.ID, 10))
}

// keyCSRPrivateKey is the CA's error key for a private key pasted as a
// CSR (internal/ca.KeyCSRPrivateKey).
const keyCSRPrivateKey = "csr.private_key"

// dropPrivateKeys blanks every pasted CSR that is a private key and puts
// the CA's message beside its field, for the form actions that do not
// submit (add, remove, deposit): a private key is never sent back to the
// browser nor kept in a draft.
func (s *Server) dropPrivateKeys(c echo.Context, f *views.Form, rows []views.RecipientRow) {
	if s.Ordering == nil || s.Ordering.ParseCSR == nil {
		return
	}
	for i := range rows {
		if strings.TrimSpace(rows[i].CSR) == "" {
			continue
		}
		_, err := s.Ordering.ParseCSR([]byte(strings.TrimSpace(rows[i].CSR)))
		if pe := domainErr(err); pe != nil && pe.Key == keyCSRPrivateKey {
			rows[i].CSR = ""
			f.Errors[rows[i].F("csr")] = localizer(c).T(pe.Key)
		}
	}
}

func (s *Server) ordersList(c echo.Context) error {
	u := currentUser(c)
	l := localizer(c)
	vm := views.OrderListVM{Status: c.QueryParam("status"), Product: c.QueryParam("product"), Email: strings.TrimSpace(c.QueryParam("email"))}
	if len(vm.Email) > 254 {
		vm.Email = vm.Email[:254]
	}
	switch vm.Status {
	case "", "pending", "completed", "cancelled":
	default:
		vm.Status = ""
	}
	if _, ok := portal.ProductByID(portal.ProductID(vm.Product)); !ok {
		vm.Product = ""
	}
	offset, _ := strconv.Atoi(c.QueryParam("offset"))
	if offset < 0 {
		offset = 0
	}
	orders, total, err := s.DB.ListOrders(c.Request().Context(), u.AccountID,
		store.OrderFilter{Status: vm.Status, Product: vm.Product, Email: vm.Email, Limit: 50, Offset: offset})
	if err != nil {
		return err
	}
	vm.Total = total
	for _, p := range portal.Products {
		vm.Products = append(vm.Products, views.Option{Value: string(p.ID), Label: l.T("product." + string(p.ID))})
	}
	for _, o := range orders {
		var emails []string
		for _, r := range o.Recipients {
			emails = append(emails, r.Email)
		}
		vm.Orders = append(vm.Orders, views.OrderRow{ID: o.ID, Product: l.T("product." + string(o.Product)),
			Created: o.CreatedAt.Format("2006-01-02 15:04"), Status: l.T("order.status." + string(o.Status)),
			StatusCls: orderStatusClass(o.Status), Recipients: strings.Join(emails, ", ")})
	}
	return render(c, http.StatusOK, views.OrderList(s.page(c, "orders.title"), vm))
}

func orderStatusClass(st portal.OrderStatus) string {
	switch st {
	case portal.OrderCompleted:
		return "ok"
	case portal.OrderCancelled:
		return "bad"
	}
	return "warn"
}

func recipientStatusClass(st portal.RecipientStatus) string {
	switch st {
	case portal.RecipientIssued:
		return "ok"
	case portal.RecipientCancelled, portal.RecipientHeld:
		return "bad"
	}
	return "warn"
}

func parseID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, portal.Errorf(portal.ENotFound, "not found")
	}
	return id, nil
}

func (s *Server) orderPage(c echo.Context) error {
	u := currentUser(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	o, err := s.DB.Order(ctx, nil, u.AccountID, id)
	if err != nil {
		return err
	}
	l := localizer(c)
	vm := views.OrderVM{ID: o.ID, Product: l.T("product." + string(o.Product)), Status: l.T("order.status." + string(o.Status)),
		StatusCls: orderStatusClass(o.Status), Created: o.CreatedAt.Format("2006-01-02 15:04 MST"),
		PeriodEnd: o.PeriodEnd.Format("2006-01-02"), Hash: strings.ToUpper(strings.Replace(string(o.SignatureHash), "sha", "SHA-", 1)),
		Payment: l.T("order.pay_" + string(o.PaymentMethod)), Amount: euro(o.AmountCents), AutoRenew: o.AutoRenew,
		CanCancel: o.Status == portal.OrderPending, Additional: strings.Join(o.AdditionalEmails, ", ")}
	if o.OrganizationID != 0 {
		orgs, err := s.DB.OrgsForAccount(ctx, nil, u.AccountID)
		if err != nil {
			return err
		}
		for _, org := range orgs {
			if org.ID == o.OrganizationID {
				vm.Org = org.LegalName
			}
		}
	}
	vm.Plan = ordering.IsPlan(o.PeriodStart, o.PeriodEnd)
	if o.AutoRenew {
		rs, err := s.DB.RenewalStateOf(ctx, u.AccountID, o.ID)
		if err != nil {
			return err
		}
		vm.RenewalOrderID, vm.RenewalFailure = rs.RenewalOrderID, rs.FailureIn(l.Lang)
	}
	certStates, err := s.DB.RecipientCertStates(ctx, u.AccountID, o.ID)
	if err != nil {
		return err
	}
	vm.Tasks = orderTasks(l, o)
	for _, r := range o.Recipients {
		if r.Status == portal.RecipientIssued {
			vm.CanCancel = false
		}
		rv := views.OrderRecipientVM{ID: r.ID, Email: r.Email, CommonName: r.CommonName,
			Status: l.T("recipient.status." + string(r.Status)), StatusCls: recipientStatusClass(r.Status), CertID: r.CertificateID,
			CanResend: r.Status == portal.RecipientAwaitingKeyGen && o.Status == portal.OrderPending, HeldReason: heldReasonText(l, r.HeldReason)}
		// Revoked status shows here too, not only on the certificate pages;
		// a certificate made through a KeyGen link whose key the recipient
		// may have lost can be replaced: a new link revokes it.
		if cs, ok := certStates[r.ID]; ok {
			if cs.CertStatus == "revoked" {
				rv.Status, rv.StatusCls = l.T("recipient.status.revoked"), "bad"
			} else if cs.ViaKeyGen && r.Status == portal.RecipientIssued && o.Status != portal.OrderCancelled {
				rv.CanResend, rv.ResendRevokes = true, true
			}
		}
		vm.Recipients = append(vm.Recipients, rv)
	}
	return render(c, http.StatusOK, views.OrderPage(s.page(c, "orders.title"), vm))
}

// orderTasks turns the recipients' states into the "Next steps" list.
func orderTasks(l *i18n.Localizer, o portal.Order) []views.TaskVM {
	if o.Status != portal.OrderPending {
		return nil
	}
	seen := map[string]bool{}
	var tasks []views.TaskVM
	add := func(key string, t views.TaskVM) {
		if !seen[key] {
			seen[key] = true
			tasks = append(tasks, t)
		}
	}
	for _, r := range o.Recipients {
		data := map[string]any{"Email": r.Email, "Domain": portal.EmailDomain(r.Email)}
		switch r.Status {
		case portal.RecipientAwaitingOrg:
			add("org", views.TaskVM{Title: l.T("task.org.title"), Body: l.T("task.org.body"),
				Href: "/organizations/" + strconv.FormatInt(o.OrganizationID, 10), Link: l.T("task.org.link")})
		case portal.RecipientAwaitingDomain:
			add("domain:"+portal.EmailDomain(r.Email), views.TaskVM{Title: l.T("task.domain.title", data), Body: l.T("task.domain.body", data),
				Href: "/domains", Link: l.T("task.domain.link")})
		case portal.RecipientAwaitingMailbox:
			add("mailbox:"+r.Email, views.TaskVM{Title: l.T("task.mailbox.title", data), Body: l.T("task.mailbox.body", data), ResendEmail: r.Email})
		case portal.RecipientAwaitingKeyGen:
			add("keygen:"+r.Email, views.TaskVM{Title: l.T("task.keygen.title", data), Body: l.T("task.keygen.body", data)})
		case portal.RecipientReady:
			add("issue:"+r.Email, views.TaskVM{Title: l.T("task.issue.title", data), Body: l.T("task.issue.body", data)})
		case portal.RecipientHeld:
			add("held:"+r.Email, views.TaskVM{Title: l.T("task.held.title", data), Body: l.T("task.held.body", data)})
		}
	}
	return tasks
}

func (s *Server) orderCancel(c echo.Context) error {
	u := currentUser(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	if err := s.Ordering.Cancel(c.Request().Context(), *u, id); err != nil {
		if portal.ErrorCode(err) == portal.EConflict {
			flash(c, "order.cannot_cancel")
			return c.Redirect(http.StatusSeeOther, "/orders/"+strconv.FormatInt(id, 10))
		}
		return err
	}
	_ = s.DB.Audit(c.Request().Context(), nil, auditFor(c, u, "order.cancelled", "order", id, u.AccountID, ""))
	flash(c, "orderpage.cancelled")
	return c.Redirect(http.StatusSeeOther, "/orders/"+strconv.FormatInt(id, 10))
}

// heldReasonText shows a stored hold reason in the page's language when
// it is one of the pipeline's fixed reasons (the store keeps them in
// English); others (a CAA record's explanation, a CA refusal) as stored.
func heldReasonText(l *i18n.Localizer, reason string) string {
	switch reason {
	case ordering.HeldForReview:
		return l.T("certs.held_for_review")
	case ordering.KeyCompromised:
		return l.T("certs.key_compromised")
	}
	return reason
}
