package valkey

import (
	"context"
	"fmt"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"
)

// The session epochs and the sessionless denylist of AuthState (service tokens).

// SessionEpoch implements storage.AuthState.
func (a *AuthState) SessionEpoch(ctx context.Context, userID int64) (int64, error) {
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	n, err := a.vk().Do(ctx, a.vk().B().Get().Key(a.epochKey(userID)).Build()).AsInt64()
	if valkeygo.IsValkeyNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("valkey: session epoch: %w", err)
	}
	return n, nil
}

// DenyToken implements storage.AuthState.
func (a *AuthState) DenyToken(ctx context.Context, jti string, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	if err := a.vk().Do(ctx, a.vk().B().Set().Key(a.denyKey(jti)).Value("1").PxMilliseconds(msInt(ttl)).Build()).Error(); err != nil {
		return fmt.Errorf("valkey: deny token: %w", err)
	}
	return nil
}

// TokenDenied implements storage.AuthState: one EXISTS, the same the session check sends.
func (a *AuthState) TokenDenied(ctx context.Context, jti string) (bool, error) {
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	n, err := a.vk().Do(ctx, a.vk().B().Exists().Key(a.denyKey(jti)).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("valkey: token denied: %w", err)
	}
	return n > 0, nil
}
