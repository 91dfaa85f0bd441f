package memory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// snapshot is the state as a file: embedded mode writes it at shutdown and reads it at start,
// so a restart keeps sessions, the denylist, lockouts and reset grants. It holds hashes of
// refresh and reset tokens, never the tokens themselves.
type snapshot struct {
	Version  int                  `json:"version"`
	Sessions []snapSession        `json:"sessions"`
	Refresh  []snapRefresh        `json:"refresh"`
	Sets     []snapSet            `json:"sets"`
	Denied   map[string]time.Time `json:"denied"`
	Attempts []snapAttempts       `json:"attempts"`
	Resets   []snapReset          `json:"resets"`
	// Epochs survive a restart as they do in Valkey. (No sign-in spans one: the server waits
	// for requests in flight before it saves; this keeps the backends alike.) Absent in files
	// written before epochs existed.
	Epochs []snapEpoch `json:"epochs,omitempty"`
}

type snapEpoch struct {
	UserID   int64     `json:"userId"`
	N        int64     `json:"n"`
	Deadline time.Time `json:"deadline"`
}

type snapSession struct {
	Session  storage.Session `json:"session"`
	Deadline time.Time       `json:"deadline"`
}

type snapRefresh struct {
	UserID    int64     `json:"userId"`
	SID       string    `json:"sid"`
	Current   string    `json:"current"`
	Prev      string    `json:"prev"`
	RotatedAt time.Time `json:"rotatedAt"`
	Family    string    `json:"family"`
	ExpiresAt time.Time `json:"expiresAt"`
	Deadline  time.Time `json:"deadline"`
}

type snapSet struct {
	UserID   int64     `json:"userId"`
	IDs      []string  `json:"ids"`
	Deadline time.Time `json:"deadline"`
}

type snapAttempts struct {
	Email    string    `json:"email"`
	N        int       `json:"n"`
	Deadline time.Time `json:"deadline"`
}

type snapReset struct {
	Hash            string    `json:"hash"`
	UserID          int64     `json:"userId"`
	PasswordVersion int64     `json:"passwordVersion"`
	Deadline        time.Time `json:"deadline"`
}

const snapshotVersion = 1

// SaveFile writes the live state to path (mode 0600), atomically: a crash mid-write leaves the
// previous file in place.
func (a *AuthState) SaveFile(path string) error {
	a.mu.Lock()
	now := a.clock()
	snap := snapshot{Version: snapshotVersion, Denied: map[string]time.Time{}}
	for _, e := range a.sessions {
		if e.deadline.After(now) {
			snap.Sessions = append(snap.Sessions, snapSession{Session: e.s, Deadline: e.deadline})
		}
	}
	for k, e := range a.refresh {
		if e.deadline.After(now) {
			snap.Refresh = append(snap.Refresh, snapRefresh{UserID: k.userID, SID: k.sid, Current: e.current, Prev: e.prev,
				RotatedAt: e.rotatedAt, Family: e.family, ExpiresAt: e.expiresAt, Deadline: e.deadline})
		}
	}
	for uid, e := range a.sets {
		if e.deadline.After(now) {
			s := snapSet{UserID: uid, Deadline: e.deadline}
			for id := range e.ids {
				s.IDs = append(s.IDs, id)
			}
			snap.Sets = append(snap.Sets, s)
		}
	}
	for jti, d := range a.denied {
		if d.After(now) {
			snap.Denied[jti] = d
		}
	}
	for email, e := range a.attempts {
		if e.deadline.After(now) {
			snap.Attempts = append(snap.Attempts, snapAttempts{Email: email, N: e.n, Deadline: e.deadline})
		}
	}
	for h, e := range a.resets {
		if e.deadline.After(now) {
			snap.Resets = append(snap.Resets, snapReset{Hash: h, UserID: e.r.UserID, PasswordVersion: e.r.PasswordVersion, Deadline: e.deadline})
		}
	}
	for uid, e := range a.epochs {
		if e.deadline.After(now) {
			snap.Epochs = append(snap.Epochs, snapEpoch{UserID: uid, N: e.n, Deadline: e.deadline})
		}
	}
	a.mu.Unlock()

	b, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("memory: save: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("memory: save: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".auth-state-*")
	if err != nil {
		return fmt.Errorf("memory: save: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("memory: save: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("memory: save: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("memory: save: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("memory: save: %w", err)
	}
	return nil
}

// LoadFile adds the entries saved at path that have not expired since. A missing file is not an
// error (the first start); a corrupt one is, and is left alone.
func (a *AuthState) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("memory: load: %w", err)
	}
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return fmt.Errorf("memory: load %s: %w", path, err)
	}
	if snap.Version != snapshotVersion {
		return fmt.Errorf("memory: load %s: unknown version %d", path, snap.Version)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clock()
	for _, s := range snap.Sessions {
		if s.Deadline.After(now) {
			a.sessions[sessionKey{s.Session.UserID, s.Session.ID}] = &sessionEntry{s: s.Session, deadline: s.Deadline}
		}
	}
	for _, r := range snap.Refresh {
		if r.Deadline.After(now) {
			a.refresh[sessionKey{r.UserID, r.SID}] = &refreshEntry{current: r.Current, prev: r.Prev, rotatedAt: r.RotatedAt,
				family: r.Family, expiresAt: r.ExpiresAt, deadline: r.Deadline}
		}
	}
	for _, s := range snap.Sets {
		if s.Deadline.After(now) {
			e := &setEntry{ids: make(map[string]struct{}, len(s.IDs)), deadline: s.Deadline}
			for _, id := range s.IDs {
				e.ids[id] = struct{}{}
			}
			a.sets[s.UserID] = e
		}
	}
	for jti, d := range snap.Denied {
		if d.After(now) {
			a.denied[jti] = d
		}
	}
	for _, x := range snap.Attempts {
		if x.Deadline.After(now) {
			a.attempts[x.Email] = &attemptsEntry{n: x.N, deadline: x.Deadline}
		}
	}
	for _, x := range snap.Resets {
		if x.Deadline.After(now) {
			a.resets[x.Hash] = resetEntry{r: storage.ResetToken{UserID: x.UserID, PasswordVersion: x.PasswordVersion}, deadline: x.Deadline}
		}
	}
	for _, x := range snap.Epochs {
		if x.Deadline.After(now) {
			a.epochs[x.UserID] = &epochEntry{n: x.N, deadline: x.Deadline}
		}
	}
	return nil
}
