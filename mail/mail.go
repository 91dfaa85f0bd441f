// Package mail delivers the service's mails: password-reset links. The log mailer is for
// development; the SMTP mailer (go-mail) is for production.
package mail

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// LogMailer writes reset links to the log instead of sending them. It is the only place a
// reset link may appear in a log, and only when this mailer is chosen.
type LogMailer struct{ Log *slog.Logger }

// SendPasswordReset logs the link.
func (m LogMailer) SendPasswordReset(ctx context.Context, to, link string) error {
	m.Log.InfoContext(ctx, "password reset mail (log mailer: not sent)", "to", to, "link", link)
	return nil
}

// SMTPConfig configures SMTPMailer.
type SMTPConfig struct {
	Host     string
	Port     int    // 587 when zero
	Username string // no authentication when empty
	Password string
	From     string
	TLS      string // "starttls" (default, mandatory), "tls" (implicit, port 465), "none"
	Timeout  time.Duration
}

// SMTPMailer sends mail through an SMTP server.
type SMTPMailer struct{ cfg SMTPConfig }

// NewSMTPMailer checks cfg; it does not connect.
func NewSMTPMailer(cfg SMTPConfig) (*SMTPMailer, error) {
	if cfg.Host == "" || cfg.From == "" {
		return nil, fmt.Errorf("smtp: host and from address are required")
	}
	if err := gomail.NewMsg().From(cfg.From); err != nil {
		return nil, fmt.Errorf("smtp: from address: %w", err)
	}
	switch cfg.TLS {
	case "", "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("smtp: TLS mode %q is not starttls, tls or none", cfg.TLS)
	}
	if cfg.Port == 0 {
		cfg.Port = 587
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	return &SMTPMailer{cfg: cfg}, nil
}

// SendPasswordReset mails the link to the user.
func (m *SMTPMailer) SendPasswordReset(ctx context.Context, to, link string) error {
	msg := gomail.NewMsg()
	if err := msg.From(m.cfg.From); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := msg.To(to); err != nil {
		return fmt.Errorf("smtp: recipient: %w", err)
	}
	msg.Subject("Reset your Motorpool password")
	msg.SetBodyString(gomail.TypeTextPlain, "Someone asked to reset the password of this Motorpool account.\n\n"+
		"To choose a new password, open this link within one hour:\n\n"+link+"\n\n"+
		"If it was not you, ignore this mail: your password stays as it is.\n")
	opts := []gomail.Option{gomail.WithPort(m.cfg.Port), gomail.WithTimeout(m.cfg.Timeout)}
	switch m.cfg.TLS {
	case "tls":
		opts = append(opts, gomail.WithSSL())
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if m.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(m.cfg.Username), gomail.WithPassword(m.cfg.Password))
	}
	c, err := gomail.NewClient(m.cfg.Host, opts...)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp: send: %w", err)
	}
	return nil
}
