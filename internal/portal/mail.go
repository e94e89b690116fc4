package portal

// Email is one outgoing message. It is written to the outbox in the same
// transaction as the change that causes it; the mail worker delivers it.
type Email struct {
	To          string
	Subject     string
	Text        string
	HTML        string
	Lang        string
	Kind        string // e.g. "org_call_notice", for tests and the dev mailbox
	Attachments []Attachment
}

// Attachment is a file attached to an Email.
type Attachment struct {
	Filename    string
	ContentType string
	Data        []byte
}
