package deadline_test

import (
	"context"
	"testing"
	"time"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/deadline"
)

// recorder is a Store that remembers the context of its last call.
type recorder struct {
	storage.Store // nil: only the methods below are called
	ctx           context.Context
}

func (r *recorder) GetUser(ctx context.Context, _ int64) (storage.User, error) {
	r.ctx = ctx
	return storage.User{}, ctx.Err()
}

func (r *recorder) Ping(ctx context.Context) error { r.ctx = ctx; return nil }

// Each call gets its own deadline from the caller's context: the timeout from now, or the
// caller's deadline when that is sooner, and the caller's cancellation.
func TestEachCallIsBounded(t *testing.T) {
	rec := &recorder{}
	s := deadline.Wrap(rec, time.Minute)

	before := time.Now()
	_ = s.Ping(context.Background())
	dl, ok := rec.ctx.Deadline()
	if !ok || dl.Before(before.Add(time.Minute)) || dl.After(time.Now().Add(time.Minute)) {
		t.Errorf("Ping's deadline %v (set %v), want a minute from the call", dl, ok)
	}
	if rec.ctx.Err() == nil {
		t.Error("a call's context lives on after the call returned")
	}

	sooner, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = s.GetUser(sooner, 1)
	if dl, _ := rec.ctx.Deadline(); dl.After(time.Now().Add(time.Second)) {
		t.Errorf("GetUser's deadline %v is later than the caller's", dl)
	}

	gone, cancelGone := context.WithCancel(context.Background())
	cancelGone()
	if _, err := s.GetUser(gone, 1); err != context.Canceled {
		t.Errorf("GetUser with the caller gone: %v, want context.Canceled", err)
	}
}

// A timeout of zero leaves the store as it is (no wrapper to pay for).
func TestZeroTimeoutIsNoWrapper(t *testing.T) {
	rec := &recorder{}
	if got := deadline.Wrap(rec, 0); got != storage.Store(rec) {
		t.Errorf("Wrap(s, 0) = %T, want s itself", got)
	}
}
