package handlers

import (
	"html"
	"strings"
	"testing"

	"certdesk/internal/billing"
	"certdesk/internal/i18n"
	"certdesk/internal/ordering"
)

// A refused auto-renew's reason on the order page is in the page's
// language: the Dutch page said "De laatste automatische verlenging is
// mislukt: The card was declined. ..." (renewal audit).
func TestRenewalAuditRefusalReasonInThePagesLanguage(t *testing.T) {
	e := newOrderEnv(t)
	c := e.signedInOrderer()
	loc := e.submitJaneKeyGen(c)
	id := strings.TrimPrefix(loc, "/orders/")
	if _, err := e.db.Exec(`UPDATE orders SET renewal_failure = ? WHERE id = ?`, ordering.EncodeRenewalFailure(billing.ErrCardDeclined), id); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"en", "nl"} {
		c.get("/lang/" + lang)
		page := c.get(loc)
		want := i18n.For(lang).T("orderpage.renewal_failed", map[string]any{"Reason": i18n.For(lang).T("billing.card_declined")})
		if !strings.Contains(html.UnescapeString(page.body), want) {
			t.Errorf("%s page does not say %q", lang, want)
		}
	}
}
