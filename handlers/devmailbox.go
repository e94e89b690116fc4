package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"certdesk/internal/mail"
	"certdesk/internal/portal"
	"certdesk/views"
)

// The dev mailbox: in dev mode only, CA administrators read every message
// of the outbox (text, HTML, attachments) so a person or a test can follow
// the links in them. It also sends a test message through the outbox.
func init() {
	registerRoutes(func(s *Server) {
		if !s.Cfg.Dev {
			return
		}
		ca := requireRole(portal.RoleCAAdmin)
		s.Echo.GET("/dev/mailbox", s.devMailbox, s.requireUser, ca)
		s.Echo.GET("/dev/mailbox.json", s.devMailboxJSON, s.requireUser, ca)
		s.Echo.GET("/dev/mailbox/:id", s.devMailboxMessage, s.requireUser, ca)
		s.Echo.GET("/dev/mailbox/:id/attachments/:n", s.devMailboxAttachment, s.requireUser, ca)
		s.Echo.POST("/dev/mailbox/test", s.devMailboxTest, s.requireUser, ca)
	})
}

func (s *Server) devMailbox(c echo.Context) error {
	return s.renderMailbox(c, http.StatusOK, views.NewForm())
}

// renderMailbox shows the newest 200 messages with the test-message form.
func (s *Server) renderMailbox(c echo.Context, status int, f views.Form) error {
	msgs, err := s.DB.ListOutbox(c.Request().Context(), 200, 0)
	if err != nil {
		return err
	}
	vm := views.MailboxVM{Form: f}
	for _, m := range msgs {
		vm.Messages = append(vm.Messages, views.MailRow{ID: m.ID, To: m.To, Subject: m.Subject, Kind: m.Kind, Status: m.Status,
			Created: m.CreatedAt.Format("2006-01-02 15:04:05"), Attachments: len(m.Attachments)})
	}
	return render(c, status, views.Mailbox(s.page(c, "mailbox.title"), vm))
}

type devMailJSON struct {
	ID          int64               `json:"id"`
	To          string              `json:"to"`
	Subject     string              `json:"subject"`
	Text        string              `json:"text"`
	HTML        string              `json:"html"`
	Kind        string              `json:"kind"`
	Status      string              `json:"status"`
	Attachments []map[string]string `json:"attachments"`
}

func (s *Server) devMailboxJSON(c echo.Context) error {
	ctx := c.Request().Context()
	msgs, err := s.DB.ListOutbox(ctx, 500, 0)
	if err != nil {
		return err
	}
	out := []devMailJSON{}
	for i := len(msgs) - 1; i >= 0; i-- { // oldest first
		m, err := s.DB.GetOutbox(ctx, msgs[i].ID)
		if err != nil {
			return err
		}
		j := devMailJSON{ID: m.ID, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Kind: m.Kind, Status: m.Status,
			Attachments: []map[string]string{}}
		for _, a := range m.Attachments {
			j.Attachments = append(j.Attachments, map[string]string{"filename": a.Filename, "content_type": a.ContentType})
		}
		out = append(out, j)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

func (s *Server) devMailboxMessage(c echo.Context) error {
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	m, err := s.DB.GetOutbox(c.Request().Context(), id)
	if err != nil {
		return err
	}
	vm := views.MailVM{ID: m.ID, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Kind: m.Kind, Status: m.Status,
		MessageID: m.MessageID, LastError: m.LastError}
	for _, a := range m.Attachments {
		vm.Attachments = append(vm.Attachments, views.Option{Value: a.Filename, Label: a.ContentType})
	}
	return render(c, http.StatusOK, views.MailMessage(s.page(c, "mailbox.title"), vm))
}

func (s *Server) devMailboxAttachment(c echo.Context) error {
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	n, err := parseID(c, "n")
	if err != nil {
		return err
	}
	m, err := s.DB.GetOutbox(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if int(n) > len(m.Attachments) {
		return echo.ErrNotFound
	}
	a := m.Attachments[n-1]
	c.Response().Header().Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(a.Filename, `"`, "")+`"`)
	return c.Blob(http.StatusOK, a.ContentType, a.Data)
}

// devMailboxTest sends a test message through the outbox.
func (s *Server) devMailboxTest(c echo.Context) error {
	f := views.NewForm()
	f.Values["to"] = strings.TrimSpace(c.FormValue("to"))
	to, ok := portal.NormalizeEmail(f.Values["to"])
	if !ok {
		f.Errors["to"] = localizer(c).T("form.email_invalid")
		return s.renderMailbox(c, http.StatusUnprocessableEntity, f)
	}
	e, err := mail.Render(localizer(c).Lang, mail.KindTest, map[string]any{"URL": s.Cfg.BaseURL + "/"})
	if err != nil {
		return err
	}
	e.To = to
	if _, err := s.DB.Enqueue(c.Request().Context(), e); err != nil {
		return err
	}
	s.Mail.Wake()
	flash(c, "mailbox.test_sent")
	return c.Redirect(http.StatusSeeOther, "/dev/mailbox")
}
