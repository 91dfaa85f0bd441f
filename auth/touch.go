package auth

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// maxTouchesInFlight bounds the background session touches, so that a burst of sessions all
// due at once cannot pile up goroutines; a touch dropped for want of a slot is tried again by
// the session's next request (its LastActivityAt has not moved).
const maxTouchesInFlight = 256

// toucher extends sessions' idle expiry in the background of the requests that find them due
// (storage.TouchDue), at most one touch in flight per session.
type toucher struct {
	wg       sync.WaitGroup
	slots    chan struct{}
	mu       sync.Mutex
	inFlight map[touchKey]struct{}
	failed   atomic.Int64
	dropped  atomic.Int64
}

type touchKey struct {
	userID int64
	sid    string
}

func newToucher() *toucher {
	return &toucher{slots: make(chan struct{}, maxTouchesInFlight), inFlight: make(map[touchKey]struct{})}
}

// touchEvery is the touch interval in force: SessionTouchInterval, but at most a tenth of the
// idle TTL, so that a short idle TTL still slides.
func (s *Service) touchEvery() time.Duration {
	return min(s.cfg.SessionTouchInterval, s.cfg.SessionIdleTTL/10)
}

// maybeTouch starts, in the background, the touch of sess if it is due at now and none of its
// touches is in flight. It never blocks the request.
func (s *Service) maybeTouch(ctx context.Context, sess storage.Session, now time.Time) {
	if !storage.TouchDue(sess, now, s.touchEvery()) {
		return
	}
	t := s.touches
	k := touchKey{sess.UserID, sess.ID}
	t.mu.Lock()
	if _, ok := t.inFlight[k]; ok {
		t.mu.Unlock()
		return
	}
	select {
	case t.slots <- struct{}{}:
	default:
		t.mu.Unlock()
		t.dropped.Add(1)
		return
	}
	t.inFlight[k] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	client := ClientFrom(ctx)
	go func() {
		defer func() {
			t.mu.Lock()
			delete(t.inFlight, k)
			t.mu.Unlock()
			<-t.slots
			t.wg.Done()
		}()
		// Not the request's context: the touch outlives the answer, bounded by StateTimeout.
		tctx, cancel := s.stateCtx(WithClient(context.Background(), client))
		defer cancel()
		err := s.state.TouchSession(tctx, sess.UserID, sess.ID, now, s.cfg.SessionIdleTTL)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			// The session keeps its old expiry; its next request tries again.
			t.failed.Add(1)
			s.log.Log(tctx, slog.LevelWarn, "session touch failed", "user_id", sess.UserID, "error", err.Error())
		}
	}()
}

// TouchStats reports the background session touches that failed (the store did not answer)
// and those dropped because maxTouchesInFlight were already running.
func (s *Service) TouchStats() (failed, dropped int64) {
	return s.touches.failed.Load(), s.touches.dropped.Load()
}

// WaitTouches waits for the session touches in flight (for shutdown and tests), up to ctx;
// each is bounded by StateTimeout.
func (s *Service) WaitTouches(ctx context.Context) error { return wait(ctx, &s.touches.wg) }
