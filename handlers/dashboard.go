package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"certdesk/views"
)

func (s *Server) dashboard(c echo.Context) error {
	ctx := c.Request().Context()
	u := currentUser(c)
	l := localizer(c)
	var vm views.DashboardVM
	if u.Role.IsStaff() {
		n, err := s.DB.PendingOrgCount(ctx)
		if err != nil {
			return err
		}
		vm.Tiles = append(vm.Tiles, views.Tile{Label: l.T("dashboard.tile_queue"), Value: strconv.Itoa(n), Href: "/staff/queue"})
	} else {
		cn, err := s.DB.CountsForAccount(ctx, u.AccountID)
		if err != nil {
			return err
		}
		pending := func(n int) string {
			if n == 0 {
				return ""
			}
			return l.T("dashboard.pending_n", map[string]any{"N": n})
		}
		vm.Tiles = append(vm.Tiles,
			views.Tile{Label: l.T("dashboard.tile_orders"), Value: strconv.Itoa(cn.PendingOrders), Href: "/orders?status=pending"},
			views.Tile{Label: l.T("dashboard.tile_certs"), Value: strconv.Itoa(cn.IssuedCerts), Href: "/certificates"},
			views.Tile{Label: l.T("dashboard.tile_orgs"), Value: strconv.Itoa(cn.ValidOrgs), Href: "/organizations", Hint: pending(cn.PendingOrgs)},
			views.Tile{Label: l.T("dashboard.tile_domains"), Value: strconv.Itoa(cn.ValidDomains), Href: "/domains", Hint: pending(cn.PendingDomains)},
		)
	}
	return render(c, http.StatusOK, views.Dashboard(s.page(c, "dashboard.title"), vm))
}
