package views

import "strconv"

// statusText is the HTTP status code alone: http.StatusText is English
// ("404 Not Found" on a Dutch page); the localized heading says the rest.
func statusText(code int) string {
	return strconv.Itoa(code)
}
