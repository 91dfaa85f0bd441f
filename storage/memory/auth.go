// Package memory keeps motorpool's short-lived state in the process: the zero-config default for
// a single instance and for tests. It behaves as the Valkey backend does (same expiries, same
// millisecond precision, same errors) but is lost on restart and not shared between instances.
package memory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// minSweepEvery is the fewest writes between two sweeps of expired entries.
const minSweepEvery = 256

// AuthState is storage.AuthState in memory: maps under one mutex, each entry with a deadline on
// the injected clock, as the Valkey backend has TTLs on the server's clock.
//
// Expired entries are invisible at once and dropped lazily when touched; besides, after as many
// writes as there were entries at the last sweep (at least minSweepEvery), every map is swept,
// so memory stays proportional to the live entries at an amortised O(1) cost per write.
type AuthState struct {
	clock func() time.Time

	mu         sync.Mutex
	sessions   map[sessionKey]*sessionEntry
	refresh    map[sessionKey]*refreshEntry
	sets       map[int64]*setEntry
	denied     map[string]time.Time // jti → deadline
	attempts   map[string]*attemptsEntry
	resets     map[string]resetEntry
	epochs     map[int64]*epochEntry
	writes     int // since the last sweep
	sweepEvery int
}

var _ storage.AuthState = (*AuthState)(nil)

type sessionKey struct {
	userID int64
	sid    string
}

type sessionEntry struct {
	s        storage.Session
	deadline time.Time
}

type refreshEntry struct {
	current, prev string // prev is "" until the first rotation
	rotatedAt     time.Time
	family        string
	expiresAt     time.Time
	deadline      time.Time
}

type setEntry struct {
	ids      map[string]struct{}
	deadline time.Time
}

type attemptsEntry struct {
	n        int
	deadline time.Time
}

type resetEntry struct {
	r        storage.ResetToken
	deadline time.Time
}

// NewAuthState returns an empty AuthState whose entries expire by now (time.Now when nil).
func NewAuthState(now func() time.Time) *AuthState {
	if now == nil {
		now = time.Now
	}
	return &AuthState{
		clock:      now,
		sessions:   make(map[sessionKey]*sessionEntry),
		refresh:    make(map[sessionKey]*refreshEntry),
		sets:       make(map[int64]*setEntry),
		denied:     make(map[string]time.Time),
		attempts:   make(map[string]*attemptsEntry),
		resets:     make(map[string]resetEntry),
		epochs:     make(map[int64]*epochEntry),
		sweepEvery: minSweepEvery,
	}
}

// CreateSession implements storage.AuthState. As in the Valkey backend, the TTLs are measured
// from s.LastActivityAt (s.LoginAt when zero), the caller's clock.
func (a *AuthState) CreateSession(_ context.Context, s storage.Session, rt storage.RefreshToken, idle time.Duration) error {
	if idle <= 0 {
		return errors.New("memory: create session: idle must be positive")
	}
	s = normSession(s)
	if s.LastActivityAt.IsZero() {
		s.LastActivityAt = s.LoginAt
	}
	now := s.LastActivityAt
	rt.ExpiresAt = msTime(rt.ExpiresAt)
	sessionTTL := min(idle, s.ExpiresAt.Sub(now))
	refreshTTL := rt.ExpiresAt.Sub(now)
	setTTL := max(s.ExpiresAt.Sub(now), refreshTTL)

	a.mu.Lock()
	defer a.mu.Unlock()
	a.wrote()
	t := a.clock()
	if a.epoch(s.UserID, t) != s.Epoch {
		return fmt.Errorf("memory: create session: %w", storage.ErrStale)
	}
	k := sessionKey{s.UserID, s.ID}
	delete(a.sessions, k)
	delete(a.refresh, k)
	if sessionTTL <= 0 {
		return nil
	}
	a.sessions[k] = &sessionEntry{s: s, deadline: t.Add(sessionTTL)}
	if refreshTTL > 0 {
		a.refresh[k] = &refreshEntry{
			current: rt.Hash, family: rt.Family, expiresAt: rt.ExpiresAt, deadline: t.Add(refreshTTL),
		}
	}
	set := a.liveSet(s.UserID, t)
	if set == nil {
		set = &setEntry{ids: make(map[string]struct{})}
		a.sets[s.UserID] = set
	}
	set.ids[s.ID] = struct{}{}
	if d := t.Add(setTTL); d.After(set.deadline) {
		set.deadline = d
	}
	return nil
}

// Authenticate implements storage.AuthState. It writes nothing on a live session.
func (a *AuthState) Authenticate(_ context.Context, userID int64, sid, jti string, now time.Time) (storage.Session, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.clock()
	if d, ok := a.denied[jti]; ok && t.Before(d) {
		return storage.Session{}, fmt.Errorf("memory: authenticate: %w", storage.ErrTokenDenied)
	}
	k := sessionKey{userID, sid}
	e := a.liveSession(k, t)
	if e == nil {
		return storage.Session{}, fmt.Errorf("memory: authenticate: %w", storage.ErrNotFound)
	}
	if !e.s.ExpiresAt.After(msTime(now)) {
		a.end(k)
		return storage.Session{}, fmt.Errorf("memory: authenticate: %w", storage.ErrNotFound)
	}
	return e.s, nil
}

// TouchSession implements storage.AuthState.
func (a *AuthState) TouchSession(_ context.Context, userID int64, sid string, now time.Time, idle time.Duration) error {
	if idle <= 0 {
		return errors.New("memory: touch session: idle must be positive")
	}
	now = msTime(now)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wrote()
	k := sessionKey{userID, sid}
	if e := a.liveSession(k, a.clock()); e != nil && !e.s.LastActivityAt.Before(now) && e.s.ExpiresAt.After(now) {
		return nil // touched as late already
	}
	if a.touch(k, now, idle, a.clock()) == nil {
		return fmt.Errorf("memory: touch session: %w", storage.ErrNotFound)
	}
	return nil
}

// touch records now as the session's last activity and moves its deadline to now+idle, never
// past its ExpiresAt by the caller's clock; a session past that is ended. It returns the
// session, nil when it is not alive. The caller holds a.mu.
func (a *AuthState) touch(k sessionKey, now time.Time, idle time.Duration, t time.Time) *sessionEntry {
	e := a.liveSession(k, t)
	if e == nil {
		return nil
	}
	ttl := min(idle, e.s.ExpiresAt.Sub(now))
	if ttl <= 0 {
		a.end(k)
		return nil
	}
	e.s.LastActivityAt = now
	e.deadline = t.Add(ttl)
	return e
}

// RotateRefresh implements storage.AuthState.
func (a *AuthState) RotateRefresh(_ context.Context, userID int64, sid, presented, next string, now time.Time, idle, grace time.Duration) (storage.Session, error) {
	if idle <= 0 {
		return storage.Session{}, errors.New("memory: rotate refresh: idle must be positive")
	}
	now = msTime(now)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wrote()
	t := a.clock()
	k := sessionKey{userID, sid}
	e, r := a.liveSession(k, t), a.liveRefresh(k, t)
	if e == nil || r == nil {
		return storage.Session{}, fmt.Errorf("memory: rotate refresh: %w", storage.ErrNotFound)
	}
	if !e.s.ExpiresAt.After(now) {
		a.end(k)
		return storage.Session{}, fmt.Errorf("memory: rotate refresh: %w", storage.ErrNotFound)
	}
	if !r.expiresAt.After(now) {
		return storage.Session{}, fmt.Errorf("memory: rotate refresh: %w", storage.ErrNotFound)
	}
	switch {
	case presented == r.current:
		r.prev, r.current, r.rotatedAt = r.current, next, now
		return a.touch(k, now, idle, t).s, nil // alive: checked above
	case r.prev != "" && presented == r.prev && now.Sub(r.rotatedAt) < grace:
		return storage.Session{}, fmt.Errorf("memory: rotate refresh: %w", storage.ErrRefreshRaced)
	}
	a.end(k)
	return storage.Session{}, fmt.Errorf("memory: rotate refresh: %w", storage.ErrRefreshReused)
}

// EndSession implements storage.AuthState. A denyTTL that is not positive denies nothing, as
// in the Valkey backend.
func (a *AuthState) EndSession(_ context.Context, userID int64, sid, denyJTI string, denyTTL time.Duration) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wrote()
	a.end(sessionKey{userID, sid})
	if denyJTI != "" && denyTTL > 0 {
		a.denied[denyJTI] = a.clock().Add(denyTTL)
	}
	return nil
}

// end deletes a session, its refresh record and its id in the user's set. The caller holds a.mu.
func (a *AuthState) end(k sessionKey) {
	delete(a.sessions, k)
	delete(a.refresh, k)
	if set, ok := a.sets[k.userID]; ok {
		delete(set.ids, k.sid)
		if len(set.ids) == 0 {
			delete(a.sets, k.userID)
		}
	}
}

// EndAllSessions implements storage.AuthState.
func (a *AuthState) EndAllSessions(_ context.Context, userID int64) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wrote()
	t := a.clock()
	a.bumpEpoch(userID, t)
	set := a.liveSet(userID, t)
	if set == nil {
		return 0, nil
	}
	n := 0
	for sid := range set.ids {
		k := sessionKey{userID, sid}
		if a.liveSession(k, t) != nil {
			n++
		}
		delete(a.sessions, k)
		delete(a.refresh, k)
	}
	delete(a.sets, userID)
	return n, nil
}

// ListSessions implements storage.AuthState.
func (a *AuthState) ListSessions(_ context.Context, userID int64) ([]storage.Session, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.clock()
	out := []storage.Session{}
	set := a.liveSet(userID, t)
	if set == nil {
		return out, nil
	}
	for sid := range set.ids {
		k := sessionKey{userID, sid}
		if e := a.liveSession(k, t); e != nil {
			out = append(out, e.s)
			continue
		}
		delete(set.ids, sid)
		delete(a.refresh, k)
	}
	if len(set.ids) == 0 {
		delete(a.sets, userID)
	}
	slices.SortFunc(out, func(x, y storage.Session) int {
		if c := x.LoginAt.Compare(y.LoginAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// RecordLoginFailure implements storage.AuthState.
func (a *AuthState) RecordLoginFailure(_ context.Context, email string, window time.Duration) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wrote()
	t := a.clock()
	e := live(a.attempts, email, t)
	if e == nil {
		// The first failure of a series fixes the window; later ones do not move it.
		e = &attemptsEntry{deadline: t.Add(window)}
		a.attempts[email] = e
	}
	e.n++
	n := e.n
	if window <= 0 && e.n == 1 {
		delete(a.attempts, email) // expired at once, as PEXPIRE 0 does
	}
	return n, nil
}

// LoginFailures implements storage.AuthState.
func (a *AuthState) LoginFailures(_ context.Context, email string) (int, time.Duration, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.clock()
	e := live(a.attempts, email, t)
	if e == nil {
		return 0, 0, nil
	}
	return e.n, e.deadline.Sub(t), nil
}

// ClearLoginFailures implements storage.AuthState.
func (a *AuthState) ClearLoginFailures(_ context.Context, email string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.attempts, email)
	return nil
}

// ForgiveLoginFailure implements storage.AuthState.
func (a *AuthState) ForgiveLoginFailure(_ context.Context, email string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wrote()
	if e := live(a.attempts, email, a.clock()); e != nil {
		if e.n--; e.n <= 0 {
			delete(a.attempts, email)
		}
	}
	return nil
}

// SaveResetToken implements storage.AuthState.
func (a *AuthState) SaveResetToken(_ context.Context, tokenHash string, r storage.ResetToken, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("memory: save reset token: ttl must be positive")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wrote()
	a.resets[tokenHash] = resetEntry{r: r, deadline: a.clock().Add(ttl)}
	return nil
}

// ConsumeResetToken implements storage.AuthState.
func (a *AuthState) ConsumeResetToken(_ context.Context, tokenHash string) (storage.ResetToken, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.resets[tokenHash]
	delete(a.resets, tokenHash)
	if !ok || !a.clock().Before(e.deadline) {
		return storage.ResetToken{}, fmt.Errorf("memory: consume reset token: %w", storage.ErrNotFound)
	}
	return e.r, nil
}

// Ping implements storage.AuthState; memory always answers.
func (a *AuthState) Ping(context.Context) error { return nil }

// Close implements storage.AuthState. It forgets everything; there is nothing else to release.
func (a *AuthState) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.sessions)
	clear(a.refresh)
	clear(a.sets)
	clear(a.denied)
	clear(a.attempts)
	clear(a.resets)
	clear(a.epochs)
	return nil
}

// expiring is an entry with a deadline on the injected clock.
type expiring interface{ expiry() time.Time }

func (e *sessionEntry) expiry() time.Time  { return e.deadline }
func (e *refreshEntry) expiry() time.Time  { return e.deadline }
func (e *setEntry) expiry() time.Time      { return e.deadline }
func (e *attemptsEntry) expiry() time.Time { return e.deadline }
func (e resetEntry) expiry() time.Time     { return e.deadline }
func (e *epochEntry) expiry() time.Time    { return e.deadline }

// live returns m[k] if it has not expired at t, dropping it if it has (nil when absent).
func live[K comparable, V expiring](m map[K]V, k K, t time.Time) V {
	var zero V
	e, ok := m[k]
	if !ok {
		return zero
	}
	if !t.Before(e.expiry()) {
		delete(m, k)
		return zero
	}
	return e
}

func (a *AuthState) liveSession(k sessionKey, t time.Time) *sessionEntry {
	return live(a.sessions, k, t)
}
func (a *AuthState) liveRefresh(k sessionKey, t time.Time) *refreshEntry {
	return live(a.refresh, k, t)
}
func (a *AuthState) liveSet(userID int64, t time.Time) *setEntry { return live(a.sets, userID, t) }

// wrote counts a write and sweeps when enough have accumulated. The caller holds a.mu.
func (a *AuthState) wrote() {
	a.writes++
	if a.writes < a.sweepEvery {
		return
	}
	a.sweep()
}

// sweep drops every expired entry. The caller holds a.mu.
func (a *AuthState) sweep() {
	t := a.clock()
	sweepMap(a.sessions, t)
	sweepMap(a.refresh, t)
	sweepMap(a.sets, t)
	sweepMap(a.attempts, t)
	sweepMap(a.resets, t)
	sweepMap(a.epochs, t)
	maps.DeleteFunc(a.denied, func(_ string, d time.Time) bool { return !t.Before(d) })
	a.writes = 0
	// Sweep again once as many writes have happened as there are entries now, so the cost
	// per write stays constant however many live entries there are.
	a.sweepEvery = max(minSweepEvery, a.entries())
}

// sweepMap drops every entry of m that has expired at t.
func sweepMap[K comparable, V expiring](m map[K]V, t time.Time) {
	maps.DeleteFunc(m, func(_ K, e V) bool { return !t.Before(e.expiry()) })
}

// entries counts every stored entry. The caller holds a.mu.
func (a *AuthState) entries() int {
	return len(a.sessions) + len(a.refresh) + len(a.sets) + len(a.denied) + len(a.attempts) + len(a.resets) + len(a.epochs)
}

// normSession keeps what the Valkey backend keeps: times in UTC to the millisecond.
func normSession(s storage.Session) storage.Session {
	s.LoginAt = msTime(s.LoginAt)
	s.LastActivityAt = msTime(s.LastActivityAt)
	s.ExpiresAt = msTime(s.ExpiresAt)
	return s
}

// msTime truncates t to the millisecond, in UTC, as unix milliseconds keep it. The zero time
// stays zero.
func msTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}
