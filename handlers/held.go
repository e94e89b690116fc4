package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"certdesk/internal/portal"
)

// A CA administrator releases a held issuance after review: the recipient
// goes back to ready and issuance runs again, with the pre-issuance lint
// and the CAA check as always (SBR 4.3.1.2), so a release can never sign
// what the lint refuses; it holds again if the cause is still there.
func init() {
	registerRoutes(func(s *Server) {
		s.Echo.POST("/staff/recipients/:id/release", s.staffRelease, s.requireUser, requireRole(portal.RoleCAAdmin))
	})
}

func (s *Server) staffRelease(c echo.Context) error {
	u := currentUser(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	r, err := s.DB.Recipient(ctx, nil, id)
	if err != nil {
		return err
	}
	st, err := s.DB.ReleaseHeld(ctx, id)
	if err != nil {
		return err
	}
	if st == "" {
		flash(c, "certs.release_not_held")
		return c.Redirect(http.StatusSeeOther, "/staff/certificates/held")
	}
	_ = s.DB.Audit(ctx, nil, auditFor(c, u, "issuance.released", "recipient", id, r.AccountID, "order "+strconv.FormatInt(r.OrderID, 10)))
	if st == portal.RecipientAwaitingKeyGen && s.KeyGen != nil {
		// A KeyGen issuance that was held: the page dropped its key, so
		// the recipient makes a new one through a new link.
		if _, err := s.KeyGen.SendLinkTo(ctx, id); err != nil {
			return err
		}
		flash(c, "certs.release_new_link")
		return c.Redirect(http.StatusSeeOther, "/staff/certificates/held")
	}
	if s.Certs != nil {
		if err := s.Certs.IssueRecipient(ctx, id); err != nil {
			s.Log.Warn("issuance after release deferred", "recipient_id", id, "err", err)
		}
	}
	after, err := s.DB.Recipient(ctx, nil, id)
	if err != nil {
		return err
	}
	switch after.Status {
	case portal.RecipientIssued:
		flash(c, "certs.release_issued")
	case portal.RecipientHeld:
		flash(c, "certs.release_held_again")
	default:
		flash(c, "certs.release_queued")
	}
	return c.Redirect(http.StatusSeeOther, "/staff/certificates/held")
}
