package memory

import (
	"context"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// epochEntry is a user's session epoch, kept storage.SessionEpochRetention after it last moved.
type epochEntry struct {
	n        int64
	deadline time.Time
}

// SessionEpoch implements storage.AuthState.
func (a *AuthState) SessionEpoch(_ context.Context, userID int64) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.epoch(userID, a.clock()), nil
}

// epoch is the user's session epoch at t. The caller holds a.mu.
func (a *AuthState) epoch(userID int64, t time.Time) int64 {
	if e := live(a.epochs, userID, t); e != nil {
		return e.n
	}
	return 0
}

// bumpEpoch moves the user's session epoch on. The caller holds a.mu.
func (a *AuthState) bumpEpoch(userID int64, t time.Time) {
	a.epochs[userID] = &epochEntry{n: a.epoch(userID, t) + 1, deadline: t.Add(storage.SessionEpochRetention)}
}

// DenyToken implements storage.AuthState.
func (a *AuthState) DenyToken(_ context.Context, jti string, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wrote()
	a.denied[jti] = a.clock().Add(ttl)
	return nil
}

// TokenDenied implements storage.AuthState.
func (a *AuthState) TokenDenied(_ context.Context, jti string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, ok := a.denied[jti]
	if ok && !a.clock().Before(d) {
		delete(a.denied, jti)
		ok = false
	}
	return ok, nil
}
