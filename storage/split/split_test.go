package split_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/split"
)

// projection is a UserProjection in memory; knownAfter makes a user known at their n-th look,
// as a USER_CREATED arriving while a vehicle waits would.
type projection struct {
	mu         sync.Mutex
	known      map[int64]bool
	deleted    map[int64]bool
	looks      map[int64]int
	knownAfter map[int64]int
	applied    []string
}

func newProjection() *projection {
	return &projection{known: map[int64]bool{}, deleted: map[int64]bool{}, looks: map[int64]int{}, knownAfter: map[int64]int{}}
}

func (p *projection) KnownUser(_ context.Context, id int64) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.looks[id]++
	if n, ok := p.knownAfter[id]; ok && p.looks[id] >= n {
		p.known[id] = true
	}
	return p.known[id], nil
}

func (p *projection) UserDeleted(_ context.Context, id int64) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deleted[id], nil
}

func (p *projection) ApplyUserCreated(_ context.Context, id int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.deleted[id] {
		p.known[id] = true
	}
	p.applied = append(p.applied, "created")
	return nil
}

func (p *projection) ApplyUserDeleted(_ context.Context, id int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.known, id)
	p.deleted[id] = true
	p.applied = append(p.applied, "deleted")
	return nil
}

// vehicles is the vehicles database: it refuses an owner the projection does not know, as the
// foreign key on known_users does. Only what the tests call is implemented.
type vehicles struct {
	storage.Store
	p     *projection
	calls int
}

func (v *vehicles) CreateVehicle(_ context.Context, nv storage.NewVehicle) (storage.Vehicle, error) {
	v.calls++
	v.p.mu.Lock()
	defer v.p.mu.Unlock()
	if !v.p.known[nv.UserID] {
		return storage.Vehicle{}, &storage.FieldError{Err: storage.ErrReference, Field: "userId"}
	}
	return storage.Vehicle{ID: 1, UserID: nv.UserID}, nil
}

func (v *vehicles) UpdateVehicle(ctx context.Context, id int64, u storage.VehicleUpdate) (storage.Vehicle, error) {
	owner := int64(1)
	if u.UserID != nil {
		owner = *u.UserID
	}
	return v.CreateVehicle(ctx, storage.NewVehicle{UserID: owner})
}

type users struct {
	storage.Store
	next int64
}

func (u *users) CreateUser(context.Context, storage.NewUser) (storage.User, error) {
	u.next++
	return storage.User{ID: u.next}, nil
}

func (u *users) DeleteUser(context.Context, int64) error { return nil }

// clock records the waits and answers them at once.
type clock struct{ waits []time.Duration }

func (c *clock) after(d time.Duration) <-chan time.Time {
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

func newVehicles(wait time.Duration) (*split.Store, *projection, *vehicles, *clock) {
	p, c := newProjection(), &clock{}
	v := &vehicles{p: p}
	return split.New(split.Config{Vehicles: v, Owners: p, OwnerWait: wait, After: c.after}), p, v, c
}

// A vehicle for a user whose USER_CREATED has not arrived yet waits for it, with growing
// looks at the projection, and is created once it does.
func TestOwnerArrivesWhileWaiting(t *testing.T) {
	s, p, v, c := newVehicles(2 * time.Second)
	p.knownAfter[7] = 3
	got, err := s.CreateVehicle(t.Context(), storage.NewVehicle{UserID: 7})
	if err != nil || got.UserID != 7 {
		t.Fatalf("CreateVehicle = %+v, %v; want the vehicle", got, err)
	}
	ms := time.Millisecond
	if diff := cmp.Diff([]time.Duration{10 * ms, 20 * ms, 40 * ms}, c.waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	if v.calls != 2 {
		t.Errorf("the vehicles database was asked %d times, want 2 (refused, then created)", v.calls)
	}
}

// An owner that never arrives is a 422 after OwnerWait, not sooner and not later, with the
// looks at the projection at most 200ms apart.
func TestOwnerNeverArrives(t *testing.T) {
	s, _, v, c := newVehicles(2 * time.Second)
	_, err := s.CreateVehicle(t.Context(), storage.NewVehicle{UserID: 8})
	var fe *storage.FieldError
	if !errors.As(err, &fe) || fe.Field != "userId" || !errors.Is(err, storage.ErrReference) {
		t.Fatalf("CreateVehicle error = %v, want the userId reference error", err)
	}
	var total time.Duration
	for _, w := range c.waits {
		total += w
		if w > 200*time.Millisecond {
			t.Errorf("a wait of %s, want at most 200ms", w)
		}
	}
	if total != 2*time.Second {
		t.Errorf("waited %s in all, want OwnerWait (2s)", total)
	}
	if v.calls != 1 {
		t.Errorf("the vehicles database was asked %d times, want 1", v.calls)
	}
}

// A deleted user's vehicle is refused at once: the projection knows they are gone for good.
func TestDeletedOwnerIsNotWaitedFor(t *testing.T) {
	s, p, _, c := newVehicles(2 * time.Second)
	if err := p.ApplyUserDeleted(t.Context(), 6); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateVehicle(t.Context(), storage.NewVehicle{UserID: 6}); !errors.Is(err, storage.ErrReference) {
		t.Fatalf("CreateVehicle error = %v, want ErrReference", err)
	}
	if len(c.waits) != 0 {
		t.Errorf("waited %v for a deleted owner", c.waits)
	}
}

// Without OwnerWait, and for an update that keeps its owner, nothing waits.
func TestNoWait(t *testing.T) {
	s, _, _, c := newVehicles(0)
	if _, err := s.CreateVehicle(t.Context(), storage.NewVehicle{UserID: 9}); !errors.Is(err, storage.ErrReference) {
		t.Fatalf("CreateVehicle error = %v, want ErrReference", err)
	}
	s, _, _, c2 := newVehicles(time.Second)
	if _, err := s.UpdateVehicle(t.Context(), 1, storage.VehicleUpdate{}); !errors.Is(err, storage.ErrReference) {
		t.Fatalf("UpdateVehicle error = %v, want ErrReference", err)
	}
	if len(c.waits)+len(c2.waits) != 0 {
		t.Errorf("waited %v and %v, want no wait", c.waits, c2.waits)
	}
}

// A moved vehicle waits for its new owner as a new one does.
func TestUpdateWaitsForNewOwner(t *testing.T) {
	s, p, _, _ := newVehicles(time.Second)
	p.knownAfter[5] = 1
	owner := int64(5)
	if got, err := s.UpdateVehicle(t.Context(), 1, storage.VehicleUpdate{UserID: &owner}); err != nil || got.UserID != 5 {
		t.Fatalf("UpdateVehicle = %+v, %v", got, err)
	}
}

// A request that ends while its vehicle waits gets ErrUnavailable at once.
func TestWaitEndsWithRequest(t *testing.T) {
	p := newProjection()
	never := func(time.Duration) <-chan time.Time { return nil }
	s := split.New(split.Config{Vehicles: &vehicles{p: p}, Owners: p, OwnerWait: time.Hour, After: never})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.CreateVehicle(ctx, storage.NewVehicle{UserID: 3}); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("CreateVehicle error = %v, want ErrUnavailable", err)
	}
}

// A process serving one domain fails the other's calls with ErrNotServed.
func TestNotServed(t *testing.T) {
	p := newProjection()
	onlyVehicles := split.New(split.Config{Vehicles: &vehicles{p: p}, Owners: p})
	if _, err := onlyVehicles.CreateUser(t.Context(), storage.NewUser{}); !errors.Is(err, split.ErrNotServed) {
		t.Errorf("CreateUser error = %v, want ErrNotServed", err)
	}
	onlyUsers := split.New(split.Config{Users: &users{}})
	if _, err := onlyUsers.GetVehicle(t.Context(), 1); !errors.Is(err, split.ErrNotServed) {
		t.Errorf("GetVehicle error = %v, want ErrNotServed", err)
	}
	if _, err := onlyUsers.KnownUser(t.Context(), 1); !errors.Is(err, split.ErrNotServed) {
		t.Errorf("KnownUser error = %v, want ErrNotServed", err)
	}
	if _, err := onlyUsers.CreateUser(t.Context(), storage.NewUser{}); err != nil {
		t.Errorf("CreateUser error = %v", err)
	}
}

// With both domains in the process, its own user writes reach the projection as they commit:
// a vehicle for a user it just created needs no wait.
func TestBothDomainsReadTheirWrites(t *testing.T) {
	p, c := newProjection(), &clock{}
	s := split.New(split.Config{Users: &users{}, Vehicles: &vehicles{p: p}, Owners: p, OwnerWait: time.Second, After: c.after})
	u, err := s.CreateUser(t.Context(), storage.NewUser{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateVehicle(t.Context(), storage.NewVehicle{UserID: u.ID}); err != nil {
		t.Fatalf("CreateVehicle error = %v", err)
	}
	if err := s.DeleteUser(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	if known, _ := s.KnownUser(t.Context(), u.ID); known {
		t.Error("the deleted user is still known")
	}
	if diff := cmp.Diff([]string{"created", "deleted"}, p.applied); diff != "" || len(c.waits) != 0 {
		t.Errorf("applied (-want +got):\n%s; waits %v", diff, c.waits)
	}
}
