package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/store"
)

// The JSON API, shaped after the CertCentral Services API. It calls the
// same ordering service as the form, so the rules and messages are the
// same. Authentication: X-API-Key (requireAPIKey).
func init() {
	registerRoutes(func(s *Server) {
		g := s.Echo.Group("/api/v1", s.requireAPIKey)
		g.POST("/order/certificate/:product_id", s.apiOrderCreate)
		g.GET("/order/certificate", s.apiOrderList)
		g.GET("/order/certificate/:id", s.apiOrderGet)
		g.PUT("/order/certificate/:id/status", s.apiOrderStatus)
		g.GET("/organization", s.apiOrgList)
		g.GET("/domain", s.apiDomainList)
		// unknown API paths answer JSON 404, not the HTML page
		g.Any("/*", func(c echo.Context) error { return echo.ErrNotFound })
	})
}

type apiCertificate struct {
	CommonNameIndicator string   `json:"common_name_indicator"`
	CommonName          string   `json:"common_name"`
	Emails              []string `json:"emails"`
	CSR                 string   `json:"csr"`
	SignatureHash       string   `json:"signature_hash"`
}

type apiOrderRequest struct {
	Certificate  *apiCertificate  `json:"certificate"`
	Certificates []apiCertificate `json:"certificates"`
	Organization *struct {
		ID int64 `json:"id"`
	} `json:"organization"`
	ValidityYears        int      `json:"validity_years"`
	ValidityDays         int      `json:"validity_days"`
	CustomExpirationDate string   `json:"custom_expiration_date"`
	AutoRenew            bool     `json:"auto_renew"`
	PaymentMethod        string   `json:"payment_method"`
	AdditionalEmails     []string `json:"additional_emails"`
}

// bindJSON decodes a JSON body strictly (unknown fields refused) with a
// size limit, answering 4xx with a clear message for anything else.
func bindJSON(c echo.Context, v any) error {
	ct := c.Request().Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/json") {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "Send the body as application/json.")
	}
	r := c.Request()
	if r.ContentLength > maxJSONBody {
		return echo.ErrStatusRequestEntityTooLarge
	}
	// A body over the limit is 413, not a truncated body's "unexpected EOF".
	r.Body = http.MaxBytesReader(c.Response(), r.Body, maxJSONBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return echo.ErrStatusRequestEntityTooLarge
		}
		return &portal.Error{Code: portal.EInvalid, Message: "The body is not valid JSON for this request: " + jsonErrText(err)}
	}
	// One JSON value only: "{...} {...}" or "{...}}" is refused, not
	// acted on from its first part (a revocation cannot be undone).
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &portal.Error{Code: portal.EInvalid, Message: "The body is not valid JSON for this request: there is more after the JSON value."}
	}
	return nil
}

// jsonTypeName is a Go type as JSON calls it.
func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonTypeName(t.Elem())
	}
	return "another type"
}

// maxJSONBody bounds an API request body: 1 MiB (100 recipients with
// ordinary CSRs of 1-2 KiB each fit).
const maxJSONBody = 1 << 20

func jsonErrText(err error) string {
	// A value of the wrong type names the field and the types in plain
	// words ("validity_years must be a number, not a string"), not Go's
	// "cannot unmarshal string into Go struct field apiOrderReq...".
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field + " must be " + jsonTypeName(te.Type) + ", not " + te.Value + "."
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.TrimPrefix(s, "json: ")
}

func (s *Server) apiOrderCreate(c echo.Context) error {
	u := currentUser(c)
	var req apiOrderRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	in := ordering.Input{Product: portal.ProductID(c.Param("product_id")), AutoRenew: req.AutoRenew,
		PaymentMethod: portal.PaymentMethod(req.PaymentMethod), Agreed: true, Lang: u.Lang,
		IdempotencyKey: c.Request().Header.Get("Idempotency-Key"), AdditionalEmails: strings.Join(req.AdditionalEmails, ",")}
	if len(in.IdempotencyKey) > 200 {
		return portal.FieldError("Idempotency-Key", "", "The Idempotency-Key header is at most 200 characters.")
	}
	if _, ok := portal.ProductByID(in.Product); !ok {
		return portal.FieldError("product_id", "order.product_invalid", "Unknown product id.")
	}
	if in.PaymentMethod == "" {
		in.PaymentMethod = s.Billing.DefaultMethod(c.Request().Context(), u.AccountID)
	}
	if in.PaymentMethod == portal.PayCard {
		in.Card.OnFile = true // the API pays by card with the card on file
	}
	if req.Organization != nil {
		in.OrganizationID = req.Organization.ID
	}
	switch {
	case req.CustomExpirationDate != "":
		in.Validity, in.CustomDate = ordering.ValidityCustomDate, req.CustomExpirationDate
	case req.ValidityDays != 0:
		in.Validity, in.CustomDays = ordering.ValidityCustomDays, strconv.Itoa(req.ValidityDays)
	case req.ValidityYears >= 1 && req.ValidityYears <= 3:
		in.Validity = fmt.Sprintf("%dy", req.ValidityYears)
	default:
		return portal.FieldError("validity_years", "order.validity_invalid", "Give validity_years (1-3), validity_days or custom_expiration_date.")
	}
	certs := req.Certificates
	if req.Certificate != nil {
		certs = append([]apiCertificate{*req.Certificate}, certs...)
	}
	for i, ac := range certs {
		if len(ac.Emails) != 1 {
			return portal.FieldError(ordering.RecipientField(i, "email"), "", "Each certificate takes exactly one address in emails.")
		}
		if i == 0 {
			in.SignatureHash = portal.SignatureHash(ac.SignatureHash)
		}
		ri := ordering.RecipientInput{Email: ac.Emails[0], CSR: ac.CSR, HasCSR: ac.CSR != ""}
		switch ac.CommonNameIndicator {
		case "", "email_address":
		case "name":
			ri.CNFromName, ri.Name = true, ac.CommonName
		default:
			return portal.FieldError(ordering.RecipientField(i, "cn"), "", "common_name_indicator is email_address or name.")
		}
		in.Recipients = append(in.Recipients, ri)
	}
	o, err := s.Ordering.Submit(c.Request().Context(), *u, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"id": o.ID})
}

type apiRecipient struct {
	ID            int64  `json:"id"`
	Email         string `json:"email"`
	CommonName    string `json:"common_name"`
	Status        string `json:"status"`
	CertificateID *int64 `json:"certificate_id"`
	// CertificateStatus is the current certificate's status (issued,
	// revoked, ...); absent without a certificate. A recipient stays
	// "issued" when its certificate is revoked.
	CertificateStatus string `json:"certificate_status,omitempty"`
}

type apiOrder struct {
	ID             int64          `json:"id"`
	Status         string         `json:"status"`
	ProductID      string         `json:"product_id"`
	OrganizationID *int64         `json:"organization_id"`
	SignatureHash  string         `json:"signature_hash"`
	CreatedAt      string         `json:"created_at"`
	PeriodEnd      string         `json:"period_end"`
	PaymentMethod  string         `json:"payment_method"`
	AmountCents    int64          `json:"amount_cents"`
	Recipients     []apiRecipient `json:"recipients"`
}

func toAPIOrder(o portal.Order, certs map[int64]store.RecipientCertState) apiOrder {
	a := apiOrder{ID: o.ID, Status: string(o.Status), ProductID: string(o.Product), SignatureHash: string(o.SignatureHash),
		CreatedAt: o.CreatedAt.Format(time.RFC3339), PeriodEnd: o.PeriodEnd.Format(time.RFC3339),
		PaymentMethod: string(o.PaymentMethod), AmountCents: o.AmountCents, Recipients: []apiRecipient{}}
	if a.Status == string(portal.OrderCancelled) {
		a.Status = "canceled" // CertCentral spelling
	}
	if o.OrganizationID != 0 {
		id := o.OrganizationID
		a.OrganizationID = &id
	}
	for _, r := range o.Recipients {
		ar := apiRecipient{ID: r.ID, Email: r.Email, CommonName: r.CommonName, Status: string(r.Status)}
		if r.CertificateID != 0 {
			id := r.CertificateID
			ar.CertificateID = &id
			ar.CertificateStatus = certs[r.ID].CertStatus
		}
		a.Recipients = append(a.Recipients, ar)
	}
	return a
}

func (s *Server) apiOrderGet(c echo.Context) error {
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
	certs, err := s.DB.RecipientCertStates(ctx, u.AccountID, o.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPIOrder(o, certs))
}

func (s *Server) apiOrderList(c echo.Context) error {
	u := currentUser(c)
	limit, offset := 50, 0
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return portal.FieldError("limit", "", "limit is a number from 1 to 200.")
		}
		limit = n
	}
	if v := c.QueryParam("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return portal.FieldError("offset", "", "offset is a number of 0 or more.")
		}
		offset = n
	}
	orders, total, err := s.DB.ListOrders(c.Request().Context(), u.AccountID, store.OrderFilter{Limit: limit, Offset: offset,
		Status: c.QueryParam("status"), Product: c.QueryParam("product_id")})
	if err != nil {
		return err
	}
	out := []apiOrder{}
	for _, o := range orders {
		certs, err := s.DB.RecipientCertStates(c.Request().Context(), u.AccountID, o.ID)
		if err != nil {
			return err
		}
		out = append(out, toAPIOrder(o, certs))
	}
	return c.JSON(http.StatusOK, map[string]any{"orders": out, "page": map[string]int{"total": total, "limit": limit, "offset": offset}})
}

func (s *Server) apiOrderStatus(c echo.Context) error {
	u := currentUser(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	var req struct {
		Status string `json:"status"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	if req.Status != "canceled" && req.Status != "cancelled" {
		return portal.FieldError("status", "", `The only status you can set is "canceled".`)
	}
	if err := s.Ordering.Cancel(c.Request().Context(), *u, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func rfc3339(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func (s *Server) apiOrgList(c echo.Context) error {
	u := currentUser(c)
	orgs, err := s.DB.OrgsForAccount(c.Request().Context(), nil, u.AccountID)
	if err != nil {
		return err
	}
	now := s.Clock.Now()
	out := []map[string]any{}
	for _, o := range orgs {
		out = append(out, map[string]any{"id": o.ID, "name": o.LegalName, "assumed_name": o.AssumedName,
			"status": string(o.State(now)), "validated_at": rfc3339(o.ValidatedAt), "expires_at": rfc3339(o.ExpiresAt)})
	}
	return c.JSON(http.StatusOK, map[string]any{"organizations": out})
}

func (s *Server) apiDomainList(c echo.Context) error {
	u := currentUser(c)
	ctx := c.Request().Context()
	orgs, err := s.DB.OrgsForAccount(ctx, nil, u.AccountID)
	if err != nil {
		return err
	}
	now := s.Clock.Now()
	out := []map[string]any{}
	for _, o := range orgs {
		ds, err := s.DB.DomainsForOrg(ctx, nil, o.ID)
		if err != nil {
			return err
		}
		for _, d := range ds {
			out = append(out, map[string]any{"id": d.ID, "name": d.Name, "organization": map[string]any{"id": o.ID},
				"method": string(d.Method), "status": string(d.State(now)), "validated_at": rfc3339(d.ValidatedAt), "expires_at": rfc3339(d.ExpiresAt)})
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"domains": out})
}
