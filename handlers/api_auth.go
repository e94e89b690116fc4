package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"certdesk/internal/portal"
)

// APIKeyHeader carries an API key.
const APIKeyHeader = "X-API-Key"

// ctxAPIKey holds the store.APIKey of an API request.
const ctxAPIKey = "api_key"

// requireAPIKey authenticates a JSON API request by its X-API-Key header:
// the key is looked up by its SHA-256; an unknown or revoked key, or a
// key whose user no longer belongs to the key's account, is refused with
// 401 and {"errors":[{"code":"unauthorized","message":"..."}]}. The key's
// user is put in the context under ctxUser, so currentUser(c) works in
// API handlers as it does for pages. Last use is recorded at most once a
// minute.
func (s *Server) requireAPIKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		secret := strings.TrimSpace(c.Request().Header.Get(APIKeyHeader))
		refuse := func(msg string) error {
			c.Response().Header().Set("Cache-Control", "no-store")
			return c.JSON(http.StatusUnauthorized, map[string]any{"errors": []APIError{{Code: portal.EUnauthorized, Message: msg}}})
		}
		if secret == "" {
			return refuse("Send an API key in the X-API-Key header.")
		}
		ctx := c.Request().Context()
		k, err := s.DB.APIKeyBySecret(ctx, secret)
		if portal.ErrorCode(err) == portal.ENotFound {
			return refuse("The API key is not valid.")
		}
		if err != nil {
			return err
		}
		if k.Revoked() {
			return refuse("The API key has been revoked.")
		}
		u, err := s.DB.UserByID(ctx, k.UserID)
		if portal.ErrorCode(err) == portal.ENotFound || (err == nil && u.AccountID != k.AccountID) {
			return refuse("The API key is not valid.")
		}
		if err != nil {
			return err
		}
		now := s.Clock.Now()
		if now.Sub(k.LastUsedAt) >= touchEvery {
			if err := s.DB.TouchAPIKey(ctx, k.ID, now); err != nil {
				s.Log.Warn("api key last use not recorded", "key_id", k.ID, "err", err.Error())
			}
		}
		c.Set(ctxUser, &u)
		c.Set(ctxAPIKey, k)
		return next(c)
	}
}
