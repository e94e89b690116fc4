package portal

import "time"

// Role of a user. Customer roles belong to an account; CA staff roles have
// no customer account.
type Role string

const (
	RoleAccountAdmin    Role = "account_admin"
	RoleUser            Role = "user"
	RoleValidationAgent Role = "validation_agent"
	RoleCAAdmin         Role = "ca_admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleAccountAdmin, RoleUser, RoleValidationAgent, RoleCAAdmin:
		return true
	}
	return false
}

// IsStaff reports whether r is a CA staff role.
func (r Role) IsStaff() bool { return r == RoleValidationAgent || r == RoleCAAdmin }

// Account is a customer account; it owns users, organizations, domains and orders.
type Account struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

// User signs in to the portal.
type User struct {
	ID           int64
	AccountID    int64 // 0 for CA staff
	Email        string
	Name         string
	Role         Role
	Lang         string
	PasswordHash string
	CreatedAt    time.Time
}

// IsAdmin reports whether u administers its account.
func (u User) IsAdmin() bool { return u.Role == RoleAccountAdmin }
