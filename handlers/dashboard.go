package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"certdesk/views"
)

// dashboardTiles lets features add tiles to the dashboard.
var dashboardTiles []func(s *Server, c echo.Context) []views.Tile

func (s *Server) dashboard(c echo.Context) error {
	var vm views.DashboardVM
	for _, f := range dashboardTiles {
		vm.Tiles = append(vm.Tiles, f(s, c)...)
	}
	return render(c, http.StatusOK, views.Dashboard(s.page(c, "dashboard.title"), vm))
}
