package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// RequestPasswordReset answers at once; the lookup, the token and the mail happen in the
// background, so the answer and its timing say nothing about whether the email exists.
func (s *Service) RequestPasswordReset(ctx context.Context, email string) {
	if s.mailer == nil {
		s.log.Error("password reset refused", "error", errNoPasswords.Error())
		return
	}
	select {
	case s.mailSlots <- struct{}{}:
	default:
		// Too many in flight (a flood the rate limiter let through): drop this one; the answer
		// is the same either way.
		s.log.Warn("password reset dropped: too many in flight")
		return
	}
	client := ClientFrom(ctx)
	s.mailWG.Add(1)
	go func() {
		defer func() { <-s.mailSlots; s.mailWG.Done() }()
		ctx, cancel := context.WithTimeout(WithClient(context.Background(), client), time.Minute)
		defer cancel()
		if err := s.sendReset(ctx, email); err != nil {
			// A backend away is no bug: WARN, as the access log has it for a 503.
			level := slog.LevelError
			if errors.Is(err, storage.ErrUnavailable) {
				level = slog.LevelWarn
			}
			s.log.Log(ctx, level, "password reset mail failed", "error", err.Error())
		}
	}()
}

func (s *Service) sendReset(ctx context.Context, email string) error {
	u, err := s.store.GetUserByEmail(ctx, email)
	if errors.Is(err, storage.ErrNotFound) {
		s.event(ctx, slog.LevelInfo, "password_reset_requested", "user_id", 0)
		return nil
	}
	if err != nil {
		return err
	}
	tok := randomToken(32) // 256 bits
	sctx, cancel := s.stateCtx(ctx)
	err = s.state.SaveResetToken(sctx, hashToken(tok), storage.ResetToken{UserID: u.ID, PasswordVersion: u.PasswordVersion}, s.cfg.ResetTTL)
	cancel()
	if err != nil {
		return err
	}
	link := strings.TrimRight(s.cfg.PublicBaseURL, "/") + "/reset-password?token=" + url.QueryEscape(tok)
	s.event(ctx, slog.LevelInfo, "password_reset_requested", "user_id", u.ID)
	return s.mailer.SendPasswordReset(ctx, u.Email, link)
}

// WaitMail waits for reset mails in flight (for shutdown and tests), up to ctx.
func (s *Service) WaitMail(ctx context.Context) error { return wait(ctx, &s.mailWG) }

// wait waits for wg, up to ctx.
func wait(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ConfirmPasswordReset spends a reset token: the password is set, the login lockout of the
// email is lifted, and every session of the user ends.
func (s *Service) ConfirmPasswordReset(ctx context.Context, token, newPassword string) error {
	if s.hasher == nil {
		return errNoPasswords
	}
	sctx, cancel := s.stateCtx(ctx)
	grant, err := s.state.ConsumeResetToken(sctx, hashToken(token))
	cancel()
	if errors.Is(err, storage.ErrNotFound) {
		return ErrInvalidResetToken
	}
	if err != nil {
		return stateErr(err)
	}
	hash, err := s.hasher.Hash(ctx, newPassword)
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	u, err := s.store.SetPassword(ctx, grant.UserID, hash, grant.PasswordVersion)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrStale) {
		return ErrInvalidResetToken
	}
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	sctx, cancel = s.stateCtx(ctx)
	err = s.state.ClearLoginFailures(sctx, storage.NormalizeEmail(u.Email))
	cancel()
	if err != nil {
		return stateErr(err)
	}
	s.event(ctx, slog.LevelInfo, "password_reset", "user_id", u.ID)
	return s.EndAllSessions(ctx, u.ID, "password_reset")
}
