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
	k := a.denyKey(jti)
	set := a.vk().B().Set().Key(k).Value("1").PxMilliseconds(msInt(ttl)).Build()
	if err := a.doSettled(ctx, valkeygo.Commands{set}, nil, k)[0].Error(); err != nil {
		return fmt.Errorf("valkey: deny token: %w", err)
	}
	return nil
}

// TokenDenied implements storage.AuthState: the GET that Authenticate sends, through the local
// cache as there.
func (a *AuthState) TokenDenied(ctx context.Context, jti string) (bool, error) {
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	b := a.vk().B()
	var r valkeygo.ValkeyResult
	if a.localTTL > 0 {
		r = a.vk().DoCache(ctx, b.Get().Key(a.denyKey(jti)).Cache(), a.localTTL)
	} else {
		r = a.vk().Do(ctx, b.Get().Key(a.denyKey(jti)).Build())
	}
	if err := r.Error(); valkeygo.IsValkeyNil(err) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("valkey: token denied: %w", err)
	}
	return true, nil
}
