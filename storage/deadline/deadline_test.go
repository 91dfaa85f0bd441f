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

// projRecorder is a UserProjection that remembers the deadline of each call.
type projRecorder struct{ deadlines []time.Time }

func (p *projRecorder) record(ctx context.Context) {
	dl, _ := ctx.Deadline()
	p.deadlines = append(p.deadlines, dl)
}

func (p *projRecorder) KnownUser(ctx context.Context, _ int64) (bool, error) {
	p.record(ctx)
	return true, nil
}
func (p *projRecorder) UserDeleted(ctx context.Context, _ int64) (bool, error) {
	p.record(ctx)
	return false, nil
}
func (p *projRecorder) ApplyUserCreated(ctx context.Context, _ int64) error {
	p.record(ctx)
	return nil
}
func (p *projRecorder) ApplyUserDeleted(ctx context.Context, _ int64) error {
	p.record(ctx)
	return nil
}

// The projection's calls are bounded as the store's are.
func TestProjectionCallsAreBounded(t *testing.T) {
	rec := &projRecorder{}
	p := deadline.WrapProjection(rec, time.Minute)
	before := time.Now()
	_, _ = p.KnownUser(context.Background(), 1)
	_, _ = p.UserDeleted(context.Background(), 1)
	_ = p.ApplyUserCreated(context.Background(), 1)
	_ = p.ApplyUserDeleted(context.Background(), 1)
	if len(rec.deadlines) != 4 {
		t.Fatalf("%d calls reached the projection, want 4", len(rec.deadlines))
	}
	for i, dl := range rec.deadlines {
		if dl.Before(before.Add(time.Minute)) || dl.After(time.Now().Add(time.Minute)) {
			t.Errorf("call %d's deadline %v, want a minute from the call", i, dl)
		}
	}
	if got := deadline.WrapProjection(rec, 0); got != storage.UserProjection(rec) {
		t.Errorf("WrapProjection(p, 0) = %T, want p itself", got)
	}
}
