package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"certdesk/internal/i18n"
	"certdesk/internal/portal"
	"certdesk/views"
)

// statusFor is the one table that maps domain error codes to HTTP status.
var statusFor = map[string]int{
	portal.EInvalid:      http.StatusUnprocessableEntity,
	portal.ENotFound:     http.StatusNotFound,
	portal.EConflict:     http.StatusConflict,
	portal.EForbidden:    http.StatusForbidden,
	portal.EUnauthorized: http.StatusUnauthorized,
	portal.ETooMany:      http.StatusTooManyRequests,
	portal.EInternal:     http.StatusInternalServerError,
}

// StatusFor returns the HTTP status for an error.
func StatusFor(err error) int {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return he.Code
	}
	if st, ok := statusFor[portal.ErrorCode(err)]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// APIError is one entry of the JSON API's error list.
type APIError struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// errorHandler renders every error that reaches Echo: a page for browsers,
// {"errors":[...]} for the API. Internal errors are logged with detail and
// shown as a generic message; never a stack trace or SQL text.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status := StatusFor(err)
	if status >= 500 {
		s.Log.Error("internal error", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
			"route", c.Path(), "err", err.Error())
	}
	if isAPI(c) || wantsJSON(c) {
		errs := apiErrors(err, status)
		if !isAPI(c) {
			scriptMessages(localizer(c), err, status, errs)
		}
		_ = c.JSON(status, map[string]any{"errors": errs})
		return
	}
	l := localizer(c)
	p := s.page(c, "error.title")
	heading, body := errorTexts(l, err, status)
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = render(c, status, views.ErrorPage(p, status, heading, body))
}

// scriptMessages puts the messages of an error answered as JSON to a
// page's script (the KeyGen exchange refused by the CSRF check or the body
// limit) in the visitor's language, as the error page would be: the page
// shows them as they are. The JSON API (/api/) keeps its messages.
func scriptMessages(l *i18n.Localizer, err error, status int, errs []APIError) {
	if fe := portal.AsFieldErrors(err); fe != nil && status < 500 {
		for i, e := range fe {
			if i < len(errs) && e.Key != "" && i18n.Has(l.Lang, e.Key) {
				errs[i].Message = l.T(e.Key, e.Data)
			}
		}
		return
	}
	_, body := errorTexts(l, err, status)
	for i := range errs {
		errs[i].Message = body
	}
}

// errorTexts is the heading and text of the error page for status.
func errorTexts(l *i18n.Localizer, err error, status int) (heading, body string) {
	switch status {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		heading, body = l.T("error.404.heading"), l.T("error.404.body")
	case http.StatusForbidden:
		heading, body = l.T("error.403.heading"), l.T("error.403.body")
		if pe := domainErr(err); pe != nil && pe.Key == "error.csrf" {
			body = l.T("error.csrf")
		}
	case http.StatusUnauthorized:
		heading, body = l.T("error.401.heading"), l.T("error.401.body")
	case http.StatusTooManyRequests:
		heading, body = l.T("error.429.heading"), l.T("error.429.body")
	case http.StatusRequestEntityTooLarge:
		heading, body = l.T("error.413.heading"), l.T("error.413.body")
	default:
		if status >= 500 {
			heading, body = l.T("error.500.heading"), l.T("error.500.body")
		} else {
			heading, body = l.T("error.400.heading"), l.T("error.400.body")
		}
	}
	return heading, body
}

func domainErr(err error) *portal.Error {
	var pe *portal.Error
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

func apiErrors(err error, status int) []APIError {
	var out []APIError
	if fe := portal.AsFieldErrors(err); fe != nil {
		for _, e := range fe {
			out = append(out, APIError{Code: e.Code, Field: e.Field, Message: e.Message})
		}
		return out
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := "invalid"
		switch he.Code {
		case http.StatusNotFound:
			code = portal.ENotFound
		case http.StatusMethodNotAllowed:
			code = "method_not_allowed"
		case http.StatusRequestEntityTooLarge:
			code = "too_large"
		case http.StatusUnsupportedMediaType:
			code = "unsupported_media_type"
		}
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && m != "" && he.Code != http.StatusNotFound {
			msg = m
		}
		return []APIError{{Code: code, Message: msg}}
	}
	if status >= 500 {
		return []APIError{{Code: portal.EInternal, Message: "An internal error occurred."}}
	}
	return []APIError{{Code: portal.ErrorCode(err), Message: portal.ErrorMessage(err)}}
}

// formErrors turns a domain error into per-field messages (translated when
// the error has a key) and a form-level message for the rest.
func formErrors(c echo.Context, f *views.Form, err error) {
	l := localizer(c)
	fe := portal.AsFieldErrors(err)
	if fe == nil {
		f.Error = l.T("error.500.body")
		return
	}
	for _, e := range fe {
		msg := e.Message
		if e.Key != "" {
			if t := l.T(e.Key, e.Data); t != e.Key {
				msg = t
			}
		}
		if e.Field != "" {
			if f.Errors[e.Field] == "" {
				f.Errors[e.Field] = msg
			}
		} else if f.Error == "" {
			f.Error = msg
		}
	}
}

// isFormError reports whether err should be shown on the form (any domain
// error but an internal one).
func isFormError(err error) bool {
	c := portal.ErrorCode(err)
	return c != portal.EInternal && c != portal.ENotFound && c != portal.EForbidden
}

func sessionOf(c echo.Context) *sessions.Session {
	s, _ := c.Get(ctxSession).(*sessions.Session)
	return s
}

// flash stores a message key shown once on the next page.
func flash(c echo.Context, key string) {
	if sess := sessionOf(c); sess != nil {
		sess.AddFlash(key)
		_ = sess.Save(c.Request(), c.Response())
	}
}

// wantsJSON reports whether a browser script (not a page) made the
// request, such as the KeyGen exchange: its errors are answered as JSON
// so the page can show the message.
func wantsJSON(c echo.Context) bool {
	return c.Request().URL.Path == "/keygen/exchange" || strings.HasPrefix(c.Request().Header.Get("Content-Type"), "application/json")
}
