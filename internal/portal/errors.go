// Package portal holds certdesk's domain nouns, their rules and the error
// codes shared by every adapter. It imports the standard library only.
package portal

import (
	"errors"
	"fmt"
)

// Error codes. The handlers package maps each code to one HTTP status in a
// single table; nothing else decides a status.
const (
	EInvalid      = "invalid"      // bad input: 400/422
	ENotFound     = "not_found"    // missing, or another account's object: 404
	EConflict     = "conflict"     // state does not allow it: 409
	EForbidden    = "forbidden"    // signed in, not allowed: 403
	EUnauthorized = "unauthorized" // not signed in: 401
	ETooMany      = "rate_limited" // rate limit: 429
	EInternal     = "internal"     // everything else: 500, generic message
)

// Error is a domain error with a code and a message safe to show a user.
// Field names the form field the message belongs beside, when there is one.
// Key is an optional translation key for the message (go-i18n id); when it
// is empty the Message is shown as is.
type Error struct {
	Code    string
	Field   string
	Key     string
	Message string
	Data    map[string]any
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError builds an invalid-input error that belongs beside a form field.
func FieldError(field, key, message string) *Error {
	return &Error{Code: EInvalid, Field: field, Key: key, Message: message}
}

// ErrorCode returns the code of a domain error, EInternal for anything else.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var fe FieldErrors
	if errors.As(err, &fe) && len(fe) > 0 {
		return fe[0].Code
	}
	return EInternal
}

// ErrorMessage returns the user-safe message of a domain error and a generic
// text for anything else (internal details are never shown).
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EInternal {
		return e.Message
	}
	var fe FieldErrors
	if errors.As(err, &fe) && len(fe) > 0 {
		return fe[0].Message
	}
	return "An internal error occurred."
}

// FieldErrors collects several field errors so a form can show them all at
// once. It is itself an error with code EInvalid.
type FieldErrors []*Error

func (fe FieldErrors) Error() string {
	if len(fe) == 0 {
		return "no errors"
	}
	return fe[0].Error()
}

// Add appends a field error.
func (fe *FieldErrors) Add(field, key, message string) {
	*fe = append(*fe, FieldError(field, key, message))
}

// Err returns nil when there are no errors, else the collection.
func (fe FieldErrors) Err() error {
	if len(fe) == 0 {
		return nil
	}
	return fe
}

// AsFieldErrors turns any error into field errors: a FieldErrors as is, one
// *Error as a list of one, otherwise nil.
func AsFieldErrors(err error) FieldErrors {
	var fe FieldErrors
	if errors.As(err, &fe) {
		return fe
	}
	var e *Error
	if errors.As(err, &e) {
		return FieldErrors{e}
	}
	return nil
}
