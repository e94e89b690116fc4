package handlers

import (
	"github.com/labstack/echo/v4"

	"certdesk/internal/portal"
	"certdesk/store"
)

// auditFor builds an audit entry for the current request.
func auditFor(c echo.Context, u *portal.User, action, objType string, objID, accountID int64, detail string) store.AuditEntry {
	e := store.AuditEntry{IP: c.RealIP(), Action: action, ObjectType: objType, ObjectID: objID, AccountID: accountID, Detail: detail}
	if u != nil {
		e.ActorID, e.Actor = u.ID, u.Email
	}
	return e
}
