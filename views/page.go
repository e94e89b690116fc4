// Package views holds the templ components and their view models. Views
// take plain structs and never query; every user-visible string goes
// through the i18n catalogue.
package views

import (
	"certdesk/internal/i18n"
)

// UserVM is the signed-in user as the layout shows it.
type UserVM struct {
	Name        string
	Email       string
	AccountName string
	Role        string
	IsStaff     bool
	IsCAAdmin   bool
	IsAdmin     bool
}

// Page carries what every page needs: the localizer, the user, the CSRF
// token and the current path (for navigation and the language switch).
type Page struct {
	Title string
	L     *i18n.Localizer
	User  *UserVM
	CSRF  string
	Path  string
	Dev   bool
	Flash string
}

// T translates a message id.
func (p Page) T(id string, data ...map[string]any) string {
	if p.L == nil {
		return id
	}
	return p.L.T(id, data...)
}

// Lang is the page language.
func (p Page) Lang() string {
	if p.L == nil {
		return "en"
	}
	return p.L.Lang
}

// Form holds submitted values and field errors so a form can be shown
// again with everything the person typed.
type Form struct {
	Values map[string]string
	Errors map[string]string
	// Error is a message for the whole form.
	Error string
}

// NewForm returns an empty form.
func NewForm() Form { return Form{Values: map[string]string{}, Errors: map[string]string{}} }

// Value returns a submitted value.
func (f Form) Value(name string) string { return f.Values[name] }

// Err returns the error message beside a field.
func (f Form) Err(name string) string { return f.Errors[name] }

// HasErr reports whether a field has an error.
func (f Form) HasErr(name string) bool { return f.Errors[name] != "" }

// NavItem is one entry of the main navigation.
type NavItem struct {
	Href  string
	Label string
}

// Nav returns the navigation for the signed-in user.
func (p Page) Nav() []NavItem {
	if p.User == nil {
		return nil
	}
	var items []NavItem
	if !p.User.IsStaff {
		items = append(items,
			NavItem{"/dashboard", p.T("nav.dashboard")},
			NavItem{"/orders/new", p.T("nav.request")},
			NavItem{"/orders", p.T("nav.orders")},
			NavItem{"/certificates", p.T("nav.certificates")},
			NavItem{"/organizations", p.T("nav.organizations")},
			NavItem{"/domains", p.T("nav.domains")},
			NavItem{"/account", p.T("nav.account")},
		)
	} else {
		items = append(items, NavItem{"/dashboard", p.T("nav.dashboard")}, NavItem{"/staff/queue", p.T("nav.queue")},
			NavItem{"/staff/certificates/held", p.T("nav.held")})
		if p.User.IsCAAdmin {
			items = append(items, NavItem{"/staff/audit", p.T("nav.audit")})
			if p.Dev {
				items = append(items, NavItem{"/dev/mailbox", p.T("nav.mailbox")})
			}
		}
	}
	return items
}

// IsCurrent reports whether href is the current section.
func (p Page) IsCurrent(href string) bool {
	if href == "/orders" {
		return p.Path == "/orders" || (len(p.Path) > 8 && p.Path[:8] == "/orders/" && p.Path != "/orders/new")
	}
	return p.Path == href || (len(p.Path) > len(href) && p.Path[:len(href)+1] == href+"/")
}

// LangLink returns the language switch URL that comes back here.
func (p Page) LangLink(lang string) string {
	next := p.Path
	if next == "" {
		next = "/"
	}
	return "/lang/" + lang + "?next=" + next
}
