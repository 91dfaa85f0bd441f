package valkey

import (
	"context"
	"errors"
	"fmt"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/storage"
)

// Identity without a round trip: Authenticate reads the denylist entry and the session hash
// through valkey-go's server-assisted client-side cache (DoMultiCache: CLIENT TRACKING in
// RESP3, opt-in mode), so a warm request answers from process memory, and the server pushes
// an invalidation to every instance that holds a copy when the key changes (an EndSession,
// EndAllSessions, DenyToken, TouchSession or RotateRefresh anywhere, or the key's expiry).
//
//   - A local copy never outlives the server's key: valkey-go reads the key's PTTL with it and
//     keeps the copy no longer, nor longer than the AuthState's local TTL (DefaultLocalTTL), a
//     safety net should an invalidation ever be lost.
//   - On this instance a change is visible at once: every write here goes on the connection
//     that tracks this process's reads (one per server, see Open) and is followed in its
//     pipeline by an EXISTS of each key it changed (doSettled). The server sends the
//     invalidation after the write's reply and before the EXISTS's, and valkey-go drops the
//     copy as it reads the push, so when the pipeline returns no copy of the old value is left.
//   - On other instances a change is visible when the push arrives: a network hop, measured in
//     TestIdentityInvalidatedOnOtherInstance.
//   - Valkey unreachable: when the connection breaks, valkey-go drops the whole local cache
//     (and it does so when the server closes the connection, at once), so identity fails
//     closed (503) as before. A server that goes silent without closing the connection is
//     noticed within the command timeout (the connection's read/write deadline); until then,
//     copies are served for at most the local TTL.
//   - Key prefix and cluster: tracking is per key (not by prefix, no BCAST), so KeyPrefix
//     changes nothing; on a cluster each node tracks the keys read from it on this process's
//     connection to it, DoMultiCache splits the two reads by slot, and each settling EXISTS
//     goes to the node of the key it settles. A logout's session and denylist entry then live
//     on two nodes, whose pushes reach another instance one by one: it may refuse the token
//     as not found before it refuses it as denied, a refusal either way (TestClusterIdentity).

// DefaultLocalTTL caps a locally cached identity read.
const DefaultLocalTTL = 5 * time.Second

// Authenticate implements storage.AuthState. Warm, it makes no round trip; cold, one (both
// reads pipelined, although their keys are in different slots). It writes nothing unless the
// session has passed its ExpiresAt by now.
func (a *AuthState) Authenticate(ctx context.Context, userID int64, sid, jti string, now time.Time) (storage.Session, error) {
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	sess, err := decodeAuthenticate(sid, a.readIdentity(ctx, userID, sid, jti))
	if err != nil {
		return sess, err
	}
	return a.checkExpires(ctx, userID, sess, now)
}

// readIdentity reads the denylist entry of jti (GET) and the session hash (HGETALL), through
// the local cache unless it is off.
func (a *AuthState) readIdentity(ctx context.Context, userID int64, sid, jti string) []valkeygo.ValkeyResult {
	b := a.vk().B()
	deny, sk := a.denyKey(jti), a.sessionKey(userID, sid)
	if a.localTTL <= 0 {
		return a.vk().DoMulti(ctx, b.Get().Key(deny).Build(), b.Hgetall().Key(sk).Build())
	}
	return a.vk().DoMultiCache(ctx,
		valkeygo.CT(b.Get().Key(deny).Cache(), a.localTTL),
		valkeygo.CT(b.Hgetall().Key(sk).Cache(), a.localTTL))
}

// checkExpires ends a session whose ExpiresAt is at or before now (by the caller's clock; the
// server's TTL already ends it by the server's).
func (a *AuthState) checkExpires(ctx context.Context, userID int64, sess storage.Session, now time.Time) (storage.Session, error) {
	if sess.ExpiresAt.After(now) {
		return sess, nil
	}
	if err := a.end(ctx, userID, sess.ID, "", 0); err != nil {
		return storage.Session{}, fmt.Errorf("valkey: authenticate: %w", err)
	}
	return storage.Session{}, fmt.Errorf("valkey: authenticate: %w", storage.ErrNotFound)
}

// decodeAuthenticate reads the replies of the denylist GET and the session HGETALL.
func decodeAuthenticate(sid string, res []valkeygo.ValkeyResult) (storage.Session, error) {
	if err := res[0].Error(); err == nil {
		return storage.Session{}, fmt.Errorf("valkey: authenticate: %w", storage.ErrTokenDenied)
	} else if !valkeygo.IsValkeyNil(err) {
		return storage.Session{}, fmt.Errorf("valkey: authenticate: %w", err)
	}
	fields, err := res[1].AsStrMap()
	if err != nil {
		return storage.Session{}, fmt.Errorf("valkey: authenticate: %w", notFound(err))
	}
	if _, ok := fields["user_id"]; !ok { // HGETALL of no key: an empty hash
		return storage.Session{}, fmt.Errorf("valkey: authenticate: %w", storage.ErrNotFound)
	}
	return decodeSession(sid, fields)
}

// TouchSession implements storage.AuthState, in one script on the session's slot, settled.
func (a *AuthState) TouchSession(ctx context.Context, userID int64, sid string, now time.Time, idle time.Duration) error {
	if idle <= 0 {
		return errors.New("valkey: touch session: idle must be positive")
	}
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	touch := scriptCall{s: touchScript, keys: a.userKeys(userID, sid), args: []string{ms(now), msDur(idle), sid}}
	res := a.doSettled(ctx, valkeygo.Commands{touch.evalsha(a.vk())}, func(int) valkeygo.Completed { return touch.eval(a.vk()) }, touch.keys[0])
	n, err := res[0].AsInt64()
	if err != nil {
		return fmt.Errorf("valkey: touch session: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("valkey: touch session: %w", storage.ErrNotFound)
	}
	return nil
}

// doSettled sends cmds in one pipeline, followed by an EXISTS of each of keys (the keys they
// change, which this process may hold copies of), so that when it returns the server's
// invalidations of those keys have been read and the local copies dropped (see the top of
// this file). Scripts that met NOSCRIPT are resent as EVAL (eval(i) builds cmds[i]'s), with the
// same tail, in one more round trip. It returns the replies of cmds only.
func (a *AuthState) doSettled(ctx context.Context, cmds valkeygo.Commands, eval func(i int) valkeygo.Completed, keys ...string) []valkeygo.ValkeyResult {
	tail := func(cmds valkeygo.Commands) valkeygo.Commands {
		if a.localTTL <= 0 {
			return cmds
		}
		for _, k := range keys {
			cmds = append(cmds, a.vk().B().Exists().Key(k).Build())
		}
		return cmds
	}
	n := len(cmds)
	res := a.vk().DoMulti(ctx, tail(cmds)...)[:n]
	var missing []int
	for i, r := range res {
		if isNoScript(r.Error()) {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return res
	}
	again := make(valkeygo.Commands, len(missing))
	for j, i := range missing {
		again[j] = eval(i)
	}
	for j, r := range a.vk().DoMulti(ctx, tail(again)...)[:len(missing)] {
		res[missing[j]] = r
	}
	return res
}
