package valkey

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/storage"
)

// Storage format (every key under the client's KeyPrefix; timestamps are unix milliseconds in
// decimal; braces are literal, so each {userId} is a cluster hash tag and all of one user's
// keys live in one slot, which lets one script change them together):
//
//	session:{userId}:{sid}        hash: user_id, email, role, login_at, last_activity_at,
//	                              expires_at, client_ip, user_agent, epoch. PTTL: idle, never past
//	                              expires_at.
//	refresh_token:{userId}:{sid}  hash: current, prev (absent until the first rotation),
//	                              rotated_at, family, expires_at. PTTL: until expires_at.
//	sessions:{userId}             set of sids. PTTL: the longest of its members' lives.
//	session_epoch:{userId}        integer, moved on by EndAllSessions (absent: 0). PTTL:
//	                              storage.SessionEpochRetention from its last move.
//	blacklisted_token:{jti}       string "1". PTTL: the deny TTL.
//	login_attempts:{email}        integer counter. PTTL: window from the first failure.
//	reset_token:{tokenHash}       string, JSON {"user_id":n,"password_version":n}. PTTL: ttl.

// The scripts, kept in lua/ so they read as Lua. Each changes keys of one hash slot only.
var (
	//go:embed lua/touch.lua
	touchLua string
	//go:embed lua/rotate.lua
	rotateLua string
	//go:embed lua/create.lua
	createLua string
	//go:embed lua/end.lua
	endLua string
	//go:embed lua/end_all.lua
	endAllLua string
	//go:embed lua/list.lua
	listLua string
	//go:embed lua/login_failure.lua
	loginFailureLua string
	//go:embed lua/login_forgive.lua
	loginForgiveLua string
)

// script is a Lua script that can also be sent inside a pipeline (DoMulti), which
// valkeygo.Lua.Exec cannot do.
type script struct {
	*valkeygo.Lua
	src, sha string
}

func newScript(src string) *script {
	sum := sha1.Sum([]byte(src))
	// NewLuaScript (not ...Retryable): EVALSHA is never retried, so it runs at most once per call.
	return &script{Lua: valkeygo.NewLuaScript(src), src: src, sha: hex.EncodeToString(sum[:])}
}

// evalsha builds the script's EVALSHA for a pipeline.
func (s *script) evalsha(vk valkeygo.Client, keys, args []string) valkeygo.Completed {
	return vk.B().Evalsha().Sha1(s.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
}

// eval builds the script's EVAL (the whole source) for a pipeline.
func (s *script) eval(vk valkeygo.Client, keys, args []string) valkeygo.Completed {
	return vk.B().Eval().Script(s.src).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
}

// scriptCall is one call of a script, kept so that it can be resent as EVAL after NOSCRIPT.
type scriptCall struct {
	s          *script
	keys, args []string
}

func (c scriptCall) evalsha(vk valkeygo.Client) valkeygo.Completed {
	return c.s.evalsha(vk, c.keys, c.args)
}

func (c scriptCall) eval(vk valkeygo.Client) valkeygo.Completed {
	return c.s.eval(vk, c.keys, c.args)
}

// execScripts runs calls in one pipeline as EVALSHA, rescued (one more round trip) only if the
// server has lost the scripts: valkeygo.Lua.ExecMulti would spend a SCRIPT LOAD round trip
// before every pipeline.
func execScripts(ctx context.Context, vk valkeygo.Client, calls []scriptCall) []valkeygo.ValkeyResult {
	cmds := make(valkeygo.Commands, len(calls))
	for i, c := range calls {
		cmds[i] = c.evalsha(vk)
	}
	res := vk.DoMulti(ctx, cmds...)
	rescue(ctx, vk, res, func(i int) valkeygo.Completed { return calls[i].eval(vk) })
	return res
}

// rescue resends as EVAL, all in one more pipeline, the scripts whose EVALSHA in res failed with
// NOSCRIPT (the server lost its script cache: a restart, a failover, SCRIPT FLUSH), and puts
// their replies in res. NOSCRIPT means the script did not run, so nothing runs twice; EVAL
// caches it again for later EVALSHAs. eval(i) builds the EVAL of res[i]'s command; it is called
// only for NOSCRIPT replies, so res may also hold replies of commands that are not scripts.
func rescue(ctx context.Context, vk valkeygo.Client, res []valkeygo.ValkeyResult, eval func(i int) valkeygo.Completed) {
	var missing []int
	for i, r := range res {
		if isNoScript(r.Error()) {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return
	}
	again := make(valkeygo.Commands, len(missing))
	for j, i := range missing {
		again[j] = eval(i)
	}
	for j, r := range vk.DoMulti(ctx, again...) {
		res[missing[j]] = r
	}
}

var (
	touchScript        = newScript(touchLua)
	rotateScript       = newScript(rotateLua)
	createScript       = newScript(createLua)
	endScript          = newScript(endLua)
	endAllScript       = newScript(endAllLua)
	listScript         = newScript(listLua)
	loginFailureScript = newScript(loginFailureLua)
	loginForgiveScript = newScript(loginForgiveLua)
)

// AuthState is storage.AuthState on Valkey. It uses the Client's pool and does not own it.
// Authenticate reads through the client-side cache (see identity.go).
type AuthState struct {
	c        *Client
	localTTL time.Duration // cap on a locally cached identity read; 0: no local cache
}

var _ storage.AuthState = (*AuthState)(nil)

// AuthOption configures NewAuthState.
type AuthOption func(*AuthState)

// WithLocalTTL caps how long Authenticate may answer from the client-side cache
// (DefaultLocalTTL by default); 0 or less turns the local cache off, so that every
// Authenticate is a round trip.
func WithLocalTTL(d time.Duration) AuthOption {
	return func(a *AuthState) { a.localTTL = max(d, 0) }
}

// NewAuthState returns the auth state kept on c's server under c's key prefix.
func NewAuthState(c *Client, opts ...AuthOption) *AuthState {
	a := &AuthState{c: c, localTTL: DefaultLocalTTL}
	for _, o := range opts {
		o(a)
	}
	return a
}

func (a *AuthState) vk() valkeygo.Client { return a.c.vk }

// Keys, exactly as storage.AuthState documents them.

// AuthFamilies are the families of the auth state's keys (a key continues its family with a
// colon), for the metrics that count keys by family.
var AuthFamilies = []string{"session", "refresh_token", "sessions", "session_epoch", "blacklisted_token", "login_attempts", "reset_token"}

func (a *AuthState) userKeys(userID int64, sid string) []string {
	u := strconv.FormatInt(userID, 10)
	return []string{
		a.c.prefix + "session:{" + u + "}:{" + sid + "}",
		a.c.prefix + "refresh_token:{" + u + "}:{" + sid + "}",
		a.c.prefix + "sessions:{" + u + "}",
	}
}

// sessionKeyHeads are the keys of the user's sessions and refresh records up to the sid, for
// the scripts that walk the user's set.
func (a *AuthState) sessionKeyHeads(userID int64) []string {
	u := strconv.FormatInt(userID, 10)
	return []string{a.c.prefix + "session:{" + u + "}:{", a.c.prefix + "refresh_token:{" + u + "}:{"}
}

func (a *AuthState) sessionKey(userID int64, sid string) string {
	return a.c.prefix + "session:{" + strconv.FormatInt(userID, 10) + "}:{" + sid + "}"
}

func (a *AuthState) setKey(userID int64) string {
	return a.c.prefix + "sessions:{" + strconv.FormatInt(userID, 10) + "}"
}

func (a *AuthState) epochKey(userID int64) string {
	return a.c.prefix + "session_epoch:{" + strconv.FormatInt(userID, 10) + "}"
}

func (a *AuthState) denyKey(jti string) string { return a.c.prefix + "blacklisted_token:{" + jti + "}" }
func (a *AuthState) attemptsKey(email string) string {
	return a.c.prefix + "login_attempts:{" + email + "}"
}
func (a *AuthState) resetKey(hash string) string { return a.c.prefix + "reset_token:{" + hash + "}" }

// CreateSession implements storage.AuthState. Its "now" is s.LastActivityAt (s.LoginAt when
// zero): the session's own clock, so that callers with an injected clock get TTLs that agree
// with the times they pass to Authenticate later.
func (a *AuthState) CreateSession(ctx context.Context, s storage.Session, rt storage.RefreshToken, idle time.Duration) error {
	if idle <= 0 {
		return errors.New("valkey: create session: idle must be positive")
	}
	now := s.LastActivityAt
	if now.IsZero() {
		now = s.LoginAt
	}
	sessionTTL := min(idle, s.ExpiresAt.Sub(now))
	refreshTTL := rt.ExpiresAt.Sub(now)
	setTTL := max(s.ExpiresAt.Sub(now), refreshTTL)

	sessionFields := []string{
		"user_id", strconv.FormatInt(s.UserID, 10),
		"email", s.Email,
		"role", string(s.Role),
		"login_at", ms(s.LoginAt),
		"last_activity_at", ms(now),
		"expires_at", ms(s.ExpiresAt),
		"client_ip", s.ClientIP,
		"user_agent", s.UserAgent,
		"epoch", strconv.FormatInt(s.Epoch, 10),
	}
	args := []string{s.ID, msDur(sessionTTL), msDur(refreshTTL), msDur(setTTL), strconv.FormatInt(s.Epoch, 10), strconv.Itoa(len(sessionFields))}
	args = append(args, sessionFields...)
	args = append(args,
		"current", rt.Hash,
		"family", rt.Family,
		"expires_at", ms(rt.ExpiresAt),
	)
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	keys := append(a.userKeys(s.UserID, s.ID), a.epochKey(s.UserID))
	n, err := createScript.Exec(ctx, a.vk(), keys, args).AsInt64()
	if err != nil {
		return fmt.Errorf("valkey: create session: %w", err)
	}
	if n < 0 {
		return fmt.Errorf("valkey: create session: %w", storage.ErrStale)
	}
	return nil
}

// RotateRefresh implements storage.AuthState.
func (a *AuthState) RotateRefresh(ctx context.Context, userID int64, sid, presented, next string, now time.Time, idle, grace time.Duration) (storage.Session, error) {
	if idle <= 0 {
		return storage.Session{}, errors.New("valkey: rotate refresh: idle must be positive")
	}
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	rotate := scriptCall{s: rotateScript, keys: a.userKeys(userID, sid), args: []string{ms(now), msDur(idle), sid, presented, next, msDur(grace)}}
	res := a.doSettled(ctx, valkeygo.Commands{rotate.evalsha(a.vk())}, func(int) valkeygo.Completed { return rotate.eval(a.vk()) }, rotate.keys[0])
	reply, err := res[0].ToArray()
	if err != nil {
		return storage.Session{}, fmt.Errorf("valkey: rotate refresh: %w", err)
	}
	if len(reply) == 0 {
		return storage.Session{}, errors.New("valkey: rotate refresh: empty reply")
	}
	status, err := reply[0].ToString()
	if err != nil {
		return storage.Session{}, fmt.Errorf("valkey: rotate refresh: %w", err)
	}
	switch status {
	case "ok":
		if len(reply) != 2 {
			return storage.Session{}, errors.New("valkey: rotate refresh: unexpected reply")
		}
		fields, err := reply[1].AsStrMap()
		if err != nil {
			return storage.Session{}, fmt.Errorf("valkey: rotate refresh: %w", err)
		}
		return decodeSession(sid, fields)
	case "not_found":
		return storage.Session{}, fmt.Errorf("valkey: rotate refresh: %w", storage.ErrNotFound)
	case "raced":
		return storage.Session{}, fmt.Errorf("valkey: rotate refresh: %w", storage.ErrRefreshRaced)
	case "reused":
		return storage.Session{}, fmt.Errorf("valkey: rotate refresh: %w", storage.ErrRefreshReused)
	}
	return storage.Session{}, fmt.Errorf("valkey: rotate refresh: unexpected status %q", status)
}

// EndSession implements storage.AuthState. The denylist entry is in another slot than the
// session, so it is a separate command, sent in the same pipeline. Settled (doSettled): the
// next Authenticate on this AuthState sees the session gone. A denyTTL that is not
// positive denies nothing: such a token has already expired.
func (a *AuthState) EndSession(ctx context.Context, userID int64, sid, denyJTI string, denyTTL time.Duration) error {
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	if err := a.end(ctx, userID, sid, denyJTI, denyTTL); err != nil {
		return fmt.Errorf("valkey: end session: %w", err)
	}
	return nil
}

// end is EndSession's pipeline.
func (a *AuthState) end(ctx context.Context, userID int64, sid, denyJTI string, denyTTL time.Duration) error {
	end := scriptCall{s: endScript, keys: a.userKeys(userID, sid), args: []string{sid}}
	cmds := valkeygo.Commands{end.evalsha(a.vk())}
	if denyJTI != "" && denyTTL > 0 {
		cmds = append(cmds, a.vk().B().Set().Key(a.denyKey(denyJTI)).Value("1").PxMilliseconds(msInt(denyTTL)).Build())
	}
	settle := []string{end.keys[0]}
	if len(cmds) > 1 {
		settle = append(settle, a.denyKey(denyJTI))
	}
	res := a.doSettled(ctx, cmds, func(int) valkeygo.Completed { return end.eval(a.vk()) }, settle...)
	for _, r := range res {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}

// EndAllSessions implements storage.AuthState.
func (a *AuthState) EndAllSessions(ctx context.Context, userID int64) (int, error) {
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	endAll := scriptCall{s: endAllScript, keys: []string{a.setKey(userID), a.epochKey(userID)},
		args: append(a.sessionKeyHeads(userID), msDur(storage.SessionEpochRetention))}
	// Every session key of the user is in the set's slot: one EXISTS there settles them all.
	res := a.doSettled(ctx, valkeygo.Commands{endAll.evalsha(a.vk())}, func(int) valkeygo.Completed { return endAll.eval(a.vk()) }, endAll.keys[0])
	n, err := res[0].AsInt64()
	if err != nil {
		return 0, fmt.Errorf("valkey: end all sessions: %w", err)
	}
	return int(n), nil
}

// ListSessions implements storage.AuthState. Sessions with the same login time are ordered
// by id, so the order is stable.
func (a *AuthState) ListSessions(ctx context.Context, userID int64) ([]storage.Session, error) {
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	reply, err := listScript.Exec(ctx, a.vk(), []string{a.setKey(userID)}, a.sessionKeyHeads(userID)).ToArray()
	if err != nil {
		return nil, fmt.Errorf("valkey: list sessions: %w", err)
	}
	if len(reply)%2 != 0 {
		return nil, errors.New("valkey: list sessions: unexpected reply")
	}
	out := make([]storage.Session, 0, len(reply)/2)
	for i := 0; i < len(reply); i += 2 {
		sid, err := reply[i].ToString()
		if err != nil {
			return nil, fmt.Errorf("valkey: list sessions: %w", err)
		}
		fields, err := reply[i+1].AsStrMap()
		if err != nil {
			return nil, fmt.Errorf("valkey: list sessions: %w", err)
		}
		s, err := decodeSession(sid, fields)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sortSessions(out)
	return out, nil
}

// sortSessions puts sessions in ListSessions order: oldest login first, then by id.
func sortSessions(ss []storage.Session) {
	slices.SortFunc(ss, func(x, y storage.Session) int {
		if c := x.LoginAt.Compare(y.LoginAt); c != 0 {
			return c
		}
		if x.ID < y.ID {
			return -1
		}
		if x.ID > y.ID {
			return 1
		}
		return 0
	})
}

// RecordLoginFailure implements storage.AuthState. INCR and the expiry are in one script, never
// retried by the client, so one failure counts once.
func (a *AuthState) RecordLoginFailure(ctx context.Context, email string, window time.Duration) (int, error) {
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	n, err := loginFailureScript.Exec(ctx, a.vk(), []string{a.attemptsKey(email)}, []string{msDur(window)}).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("valkey: record login failure: %w", err)
	}
	return int(n), nil
}

// LoginFailures implements storage.AuthState, with GET and PTTL pipelined.
func (a *AuthState) LoginFailures(ctx context.Context, email string) (int, time.Duration, error) {
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	k := a.attemptsKey(email)
	res := a.vk().DoMulti(ctx, a.vk().B().Get().Key(k).Build(), a.vk().B().Pttl().Key(k).Build())
	n, err := res[0].AsInt64()
	if valkeygo.IsValkeyNil(err) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("valkey: login failures: %w", err)
	}
	pttl, err := res[1].AsInt64()
	if err != nil {
		return 0, 0, fmt.Errorf("valkey: login failures: %w", err)
	}
	if pttl == -2 { // expired between the two commands
		return 0, 0, nil
	}
	return int(n), time.Duration(max(pttl, 0)) * time.Millisecond, nil
}

// ClearLoginFailures implements storage.AuthState.
func (a *AuthState) ClearLoginFailures(ctx context.Context, email string) error {
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	if err := a.vk().Do(ctx, a.vk().B().Del().Key(a.attemptsKey(email)).Build()).Error(); err != nil {
		return fmt.Errorf("valkey: clear login failures: %w", err)
	}
	return nil
}

// ForgiveLoginFailure implements storage.AuthState, in one script so that a concurrent failure
// is never lost between reading and lowering the count.
func (a *AuthState) ForgiveLoginFailure(ctx context.Context, email string) error {
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	if err := loginForgiveScript.Exec(ctx, a.vk(), []string{a.attemptsKey(email)}, nil).Error(); err != nil {
		return fmt.Errorf("valkey: forgive login failure: %w", err)
	}
	return nil
}

// resetGrant is a reset_token value.
type resetGrant struct {
	UserID          int64 `json:"user_id"`
	PasswordVersion int64 `json:"password_version"`
}

// SaveResetToken implements storage.AuthState.
func (a *AuthState) SaveResetToken(ctx context.Context, tokenHash string, r storage.ResetToken, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("valkey: save reset token: ttl must be positive")
	}
	v, err := json.Marshal(resetGrant(r))
	if err != nil {
		return fmt.Errorf("valkey: save reset token: %w", err)
	}
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	cmd := a.vk().B().Set().Key(a.resetKey(tokenHash)).Value(string(v)).PxMilliseconds(msInt(ttl)).Build()
	if err := a.vk().Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("valkey: save reset token: %w", err)
	}
	return nil
}

// ConsumeResetToken implements storage.AuthState.
func (a *AuthState) ConsumeResetToken(ctx context.Context, tokenHash string) (storage.ResetToken, error) {
	ctx, cancel := a.c.withTimeout(ctx)
	defer cancel()
	v, err := a.vk().Do(ctx, a.vk().B().Getdel().Key(a.resetKey(tokenHash)).Build()).AsBytes()
	if err != nil {
		return storage.ResetToken{}, fmt.Errorf("valkey: consume reset token: %w", notFound(err))
	}
	var g resetGrant
	if err := json.Unmarshal(v, &g); err != nil {
		return storage.ResetToken{}, fmt.Errorf("valkey: consume reset token: %w", err)
	}
	return storage.ResetToken(g), nil
}

// Ping implements storage.AuthState.
func (a *AuthState) Ping(ctx context.Context) error { return a.c.Ping(ctx) }

// Close implements storage.AuthState. It does nothing: the Client is shared with the cache and
// the limiter, and whoever opened it closes it.
func (a *AuthState) Close() error { return nil }

// notFound translates the server's nil reply into storage.ErrNotFound.
func notFound(err error) error {
	if valkeygo.IsValkeyNil(err) {
		return storage.ErrNotFound
	}
	return err
}

func isNoScript(err error) bool {
	verr, ok := valkeygo.IsValkeyErr(err)
	return ok && verr.IsNoScript()
}

func decodeSession(sid string, f map[string]string) (storage.Session, error) {
	s := storage.Session{
		ID:        sid,
		Email:     f["email"],
		Role:      storage.Role(f["role"]),
		ClientIP:  f["client_ip"],
		UserAgent: f["user_agent"],
	}
	var err error
	num := func(name string) int64 {
		n, e := strconv.ParseInt(f[name], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("valkey: session %s: field %s: %w", sid, name, e)
		}
		return n
	}
	s.UserID = num("user_id")
	s.LoginAt = time.UnixMilli(num("login_at")).UTC()
	s.LastActivityAt = time.UnixMilli(num("last_activity_at")).UTC()
	s.ExpiresAt = time.UnixMilli(num("expires_at")).UTC()
	if _, ok := f["epoch"]; ok { // absent in sessions stored before epochs existed: 0
		s.Epoch = num("epoch")
	}
	return s, err
}

// ms formats t as unix milliseconds.
func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// msDur formats d in whole milliseconds, rounding up so that a positive duration stays positive.
func msDur(d time.Duration) string { return strconv.FormatInt(msInt(d), 10) }

// msInt is d in whole milliseconds, rounded up.
func msInt(d time.Duration) int64 { return int64((d + time.Millisecond - 1) / time.Millisecond) }
