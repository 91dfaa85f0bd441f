package cachekeys_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/cachekeys"
	"github.com/motorpool/motorpool/events"
)

func event(t *testing.T, typ events.Type, id int64, data any) events.Event {
	t.Helper()
	ev, err := events.New(typ, id, 1, time.Now(), data)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestFor(t *testing.T) {
	ada := events.User{ID: 7, Email: "Ada@Example.com", Name: "Ada", Role: "user"}
	moved := ada
	moved.Email, moved.PreviousEmail = "lovelace@example.com", "ADA@example.com"
	kept := ada
	kept.PreviousEmail = ada.Email
	car := events.Vehicle{ID: 3, UserID: 7, Make: "Toyota"}
	given := car
	given.UserID, given.PreviousUserID = 8, 7
	same := car
	same.PreviousUserID = 7
	tests := []struct {
		name string
		ev   events.Event
		want cachekeys.Set
	}{
		{"user created", event(t, events.UserCreated, 7, ada), cachekeys.Set{
			Keys: []string{"user:7", "user:email:ada@example.com"}, Families: []string{"users:all", "vehicles:user:7"}}},
		{"user updated, new email", event(t, events.UserUpdated, 7, moved), cachekeys.Set{
			Keys: []string{"user:7", "user:email:lovelace@example.com", "user:email:ada@example.com"}, Families: []string{"users:all"}}},
		{"user updated, same email", event(t, events.UserUpdated, 7, kept), cachekeys.Set{
			Keys: []string{"user:7", "user:email:ada@example.com"}, Families: []string{"users:all"}}},
		{"user deleted", event(t, events.UserDeleted, 7, ada), cachekeys.Set{
			Keys: []string{"user:7", "user:email:ada@example.com"}, Families: []string{"users:all", "vehicles:user:7"}}},
		{"vehicle created", event(t, events.VehicleCreated, 3, car), cachekeys.Set{
			Keys: []string{"vehicle:3"}, Families: []string{"vehicles:all", "vehicles:user:7"}}},
		{"vehicle given away", event(t, events.VehicleUpdated, 3, given), cachekeys.Set{
			Keys: []string{"vehicle:3"}, Families: []string{"vehicles:all", "vehicles:user:8", "vehicles:user:7"}}},
		{"vehicle updated, same owner", event(t, events.VehicleUpdated, 3, same), cachekeys.Set{
			Keys: []string{"vehicle:3"}, Families: []string{"vehicles:all", "vehicles:user:7"}}},
		{"vehicle deleted", event(t, events.VehicleDeleted, 3, car), cachekeys.Set{
			Keys: []string{"vehicle:3"}, Families: []string{"vehicles:all", "vehicles:user:7"}}},
		{"unknown type", events.Event{Type: "FLEET_RENAMED", Subject: "1", Data: []byte(`{}`)}, cachekeys.Set{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cachekeys.For(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("For (-want +got):\n%s", d)
			}
		})
	}
}

func TestForMalformed(t *testing.T) {
	for name, ev := range map[string]events.Event{
		"not JSON":       {Type: events.UserUpdated, Subject: "1", Data: []byte(`{"id":`)},
		"wrong shape":    {Type: events.VehicleCreated, Subject: "1", Data: []byte(`{"id":"three"}`)},
		"no user id":     {Type: events.UserCreated, Subject: "1", Data: []byte(`{"email":"a@b.c"}`)},
		"no owner id":    {Type: events.VehicleDeleted, Subject: "1", Data: []byte(`{"id":3}`)},
		"no data at all": {Type: events.UserDeleted, Subject: "1"},
	} {
		if s, err := cachekeys.For(ev); err == nil {
			t.Errorf("%s: For = %+v, want an error", name, s)
		}
	}
}

// TestForAll: a user's deletion (their vehicles' events, then theirs) names every key that
// mentions them, each once.
func TestForAll(t *testing.T) {
	evs := []events.Event{
		event(t, events.VehicleDeleted, 3, events.Vehicle{ID: 3, UserID: 7}),
		event(t, events.VehicleDeleted, 4, events.Vehicle{ID: 4, UserID: 7}),
		event(t, events.UserDeleted, 7, events.User{ID: 7, Email: "ada@example.com"}),
	}
	got, err := cachekeys.ForAll(evs)
	if err != nil {
		t.Fatal(err)
	}
	want := cachekeys.Set{Keys: []string{"vehicle:3", "vehicle:4", "user:7", "user:email:ada@example.com"},
		Families: []string{"vehicles:all", "vehicles:user:7", "users:all"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ForAll (-want +got):\n%s", d)
	}
}

// Every key and family the functions name belongs to a family of Families, and to no longer one
// than the one meant.
func TestFamilies(t *testing.T) {
	family := func(key string) string {
		best := ""
		for _, f := range cachekeys.Families {
			if (key == f || len(key) > len(f) && key[:len(f)+1] == f+":") && len(f) > len(best) {
				best = f
			}
		}
		return best
	}
	for key, want := range map[string]string{
		cachekeys.User(7): "user", cachekeys.UserEmail("Ada@Example.com"): "user:email", cachekeys.Users: "users:all",
		cachekeys.Users + ":v3:limit=20": "users:all", cachekeys.Vehicle(3): "vehicle", cachekeys.Vehicles: "vehicles:all",
		cachekeys.UserVehicles(7): "vehicles:user", cachekeys.UserVehicles(7) + ":v2:cursor=": "vehicles:user",
	} {
		if got := family(key); got != want {
			t.Errorf("%s is in family %q, want %q", key, got, want)
		}
	}
}
