// Package cachekeys names the cache's keys and families (part of the contract: README, Cache
// keys) and says which of them a committed change makes stale. The cache decorator reads by
// these names; the invalidator drops what an event names, so both share one definition.
package cachekeys

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/storage"
)

// The families of list pages.
const (
	Users    = "users:all"    // GET /users pages
	Vehicles = "vehicles:all" // GET /vehicles pages, every filter
)

// Families are the families every cache key belongs to: a key is its family, or continues it
// with a colon (the longest family that fits names it, so user:email:x is user:email). The
// metrics count keys by these names.
var Families = []string{"user", "user:email", Users, "vehicle", Vehicles, "vehicles:user"}

// User is the key of GET /users/{id}.
func User(id int64) string { return "user:" + strconv.FormatInt(id, 10) }

// UserEmail is the key of GET /users?email=, under storage.NormalizeEmail.
func UserEmail(email string) string { return "user:email:" + storage.NormalizeEmail(email) }

// Vehicle is the key of GET /vehicles/{id}.
func Vehicle(id int64) string { return "vehicle:" + strconv.FormatInt(id, 10) }

// UserVehicles is the family of GET /users/{id}/vehicles pages (and of its cached 404).
func UserVehicles(userID int64) string { return "vehicles:user:" + strconv.FormatInt(userID, 10) }

// Set is what one change invalidates: keys are dropped, families get a new version.
type Set struct {
	Keys, Families []string
}

// Add adds o's keys and families that s lacks.
func (s *Set) Add(o Set) {
	for _, k := range o.Keys {
		if !slices.Contains(s.Keys, k) {
			s.Keys = append(s.Keys, k)
		}
	}
	for _, f := range o.Families {
		if !slices.Contains(s.Families, f) {
			s.Families = append(s.Families, f)
		}
	}
}

// Empty reports whether s names nothing.
func (s Set) Empty() bool { return len(s.Keys) == 0 && len(s.Families) == 0 }

// For is what ev makes stale:
//
//	USER_CREATED     user:{id}, user:email:{email} (cached 404s), users:all, vehicles:user:{id} (its 404)
//	USER_UPDATED     user:{id}, user:email:{email} and {previousEmail}, users:all
//	USER_DELETED     user:{id}, user:email:{email}, users:all, vehicles:user:{id}
//	VEHICLE_CREATED  vehicle:{id} (a cached 404), vehicles:all, vehicles:user:{userId}
//	VEHICLE_UPDATED  vehicle:{id}, vehicles:all, vehicles:user:{userId} and {previousUserId}
//	VEHICLE_DELETED  vehicle:{id}, vehicles:all, vehicles:user:{userId}
//
// A user's deletion records a VEHICLE_DELETED for each of their vehicles, which name those. An
// event of a type this package does not know names nothing (it may be newer than this code);
// one whose data does not decode is an error.
func For(ev events.Event) (Set, error) {
	switch ev.Type.Aggregate() {
	case events.AggregateUser:
		u, err := ev.User()
		if err != nil {
			return Set{}, err
		}
		if u.ID <= 0 {
			return Set{}, fmt.Errorf("cachekeys: %s %s: no user id", ev.Type, ev.ID)
		}
		s := Set{Keys: []string{User(u.ID), UserEmail(u.Email)}, Families: []string{Users}}
		switch ev.Type {
		case events.UserCreated, events.UserDeleted:
			s.Families = append(s.Families, UserVehicles(u.ID))
		case events.UserUpdated:
			if u.PreviousEmail != "" {
				s.Add(Set{Keys: []string{UserEmail(u.PreviousEmail)}})
			}
		}
		return s, nil
	case events.AggregateVehicle:
		v, err := ev.Vehicle()
		if err != nil {
			return Set{}, err
		}
		if v.ID <= 0 || v.UserID <= 0 {
			return Set{}, fmt.Errorf("cachekeys: %s %s: no vehicle or owner id", ev.Type, ev.ID)
		}
		s := Set{Keys: []string{Vehicle(v.ID)}, Families: []string{Vehicles, UserVehicles(v.UserID)}}
		if ev.Type == events.VehicleUpdated && v.PreviousUserID > 0 {
			s.Add(Set{Families: []string{UserVehicles(v.PreviousUserID)}})
		}
		return s, nil
	}
	return Set{}, nil
}

// ForAll is the union of what evs make stale.
func ForAll(evs []events.Event) (Set, error) {
	var s Set
	for _, ev := range evs {
		one, err := For(ev)
		if err != nil {
			return s, err
		}
		s.Add(one)
	}
	return s, nil
}
