// Package events is the vocabulary of what happened to motorpool's records: the event every
// committed write of a user or a vehicle records in the outbox (in the write's transaction),
// which a relay publishes and consumers apply. It knows no SQL and no broker: it is the Event,
// its types, its data and its encoding, CloudEvents 1.0 in the structured JSON format:
//
//	{
//	  "specversion": "1.0",
//	  "id": "0b9c6f0e-3f0a-4d9e-9a57-2a5f3b1c7d42",
//	  "source": "/motorpool/vehicles",
//	  "type": "VEHICLE_UPDATED",
//	  "subject": "7",
//	  "time": "2025-05-01T09:30:00.123456Z",
//	  "datacontenttype": "application/json",
//	  "sequence": "00000000000000000003",
//	  "data": {"id": 7, "userId": 42, "make": "Toyota", ..., "previousUserId": 41}
//	}
//
// id is a random UUID, unique per event: a consumer that has applied an id skips it when it
// comes again (delivery is at least once). subject is the record's id in decimal. sequence is
// CloudEvents' sequence extension: the record's own event counter, 1 for its *_CREATED and one
// more for each later event of that record, with no gaps; it is written as a string of 20
// decimal digits, zero-padded, so that it also sorts as the extension requires, and read back
// as Event.Sequence. Events of one record may arrive out of order (several relays publish at
// once); a consumer applies an event only if its sequence is higher than the last it applied
// for that record, so an older state never overwrites a newer one. Events of different
// records are not ordered.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Type is an event's CloudEvents type: what happened to the record.
type Type string

// The event types. Every write of a user or a vehicle records exactly one of these for each
// record it changed; deleting a user records a VehicleDeleted for each of their vehicles too.
const (
	UserCreated    Type = "USER_CREATED"
	UserUpdated    Type = "USER_UPDATED" // the profile, the email, the password or the role
	UserDeleted    Type = "USER_DELETED"
	VehicleCreated Type = "VEHICLE_CREATED"
	VehicleUpdated Type = "VEHICLE_UPDATED"
	VehicleDeleted Type = "VEHICLE_DELETED"
)

// Aggregate is the kind of record an event is about.
type Aggregate string

// The aggregates.
const (
	AggregateUser    Aggregate = "user"
	AggregateVehicle Aggregate = "vehicle"
)

// Aggregate returns the kind of record events of type t are about, or "" for a type this
// package does not know (which a consumer should skip, not fail on: it may be newer).
func (t Type) Aggregate() Aggregate {
	switch t {
	case UserCreated, UserUpdated, UserDeleted:
		return AggregateUser
	case VehicleCreated, VehicleUpdated, VehicleDeleted:
		return AggregateVehicle
	}
	return ""
}

// Source is the CloudEvents source of a's events ("" for an unknown aggregate).
func (a Aggregate) Source() string {
	switch a {
	case AggregateUser:
		return "/motorpool/users"
	case AggregateVehicle:
		return "/motorpool/vehicles"
	}
	return ""
}

// Event is one event, its CloudEvents attributes as fields. Time is UTC.
type Event struct {
	ID       string // a UUID
	Source   string // Aggregate().Source() of Type
	Type     Type
	Subject  string // the record's id, in decimal
	Time     time.Time
	Sequence int64 // the record's event counter, from 1
	Data     json.RawMessage
	// TraceParent and TraceState are the W3C trace context of the request whose write
	// recorded the event (CloudEvents' distributed tracing extension, the attributes
	// traceparent and tracestate), so that its publishing and consuming, later and elsewhere,
	// join that request's trace. Empty when the write was not traced.
	TraceParent, TraceState string
}

// User is the data of a user event: the user as the API shows it (never a password).
type User struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// PreviousEmail is set in every USER_UPDATED: the email the update replaced (equal to
	// Email when it kept it), so that what was keyed by the old address can be dropped.
	PreviousEmail string `json:"previousEmail,omitempty"`
}

// Vehicle is the data of a vehicle event: the vehicle as the API shows it.
type Vehicle struct {
	ID           int64     `json:"id"`
	UserID       int64     `json:"userId"`
	Make         string    `json:"make"`
	Model        string    `json:"model"`
	Year         int32     `json:"year"`
	VIN          string    `json:"vin"`
	LicensePlate string    `json:"licensePlate"`
	Color        *string   `json:"color,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
	// PreviousUserID is set in every VEHICLE_UPDATED: the owner the update replaced (equal to
	// UserID when it kept it), so that the old owner's list can be dropped.
	PreviousUserID int64 `json:"previousUserId,omitempty"`
}

// A *_DELETED event's data is the record as it was when deleted.

// New makes an event of type t about record id, the record's seq-th, that happened at at,
// with a fresh id and data (a User or a Vehicle) as its JSON.
func New(t Type, id, seq int64, at time.Time, data any) (Event, error) {
	a := t.Aggregate()
	if a == "" {
		return Event{}, fmt.Errorf("events: unknown type %q", t)
	}
	if seq <= 0 {
		return Event{}, fmt.Errorf("events: %s of %s %d: sequence %d is not positive", t, a, id, seq)
	}
	b, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("events: %s of %s %d: %w", t, a, id, err)
	}
	return Event{
		ID:       uuid.NewString(),
		Source:   a.Source(),
		Type:     t,
		Subject:  strconv.FormatInt(id, 10),
		Time:     at.UTC(),
		Sequence: seq,
		Data:     b,
	}, nil
}

// AggregateID is the id of the record e is about, from its subject.
func (e Event) AggregateID() (int64, error) {
	id, err := strconv.ParseInt(e.Subject, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("events: subject %q is not a record id", e.Subject)
	}
	return id, nil
}

// User decodes the data of a user event.
func (e Event) User() (User, error) {
	var u User
	if e.Type.Aggregate() != AggregateUser {
		return u, fmt.Errorf("events: %s is not a user event", e.Type)
	}
	if err := json.Unmarshal(e.Data, &u); err != nil {
		return u, fmt.Errorf("events: %s data: %w", e.Type, err)
	}
	return u, nil
}

// Vehicle decodes the data of a vehicle event.
func (e Event) Vehicle() (Vehicle, error) {
	var v Vehicle
	if e.Type.Aggregate() != AggregateVehicle {
		return v, fmt.Errorf("events: %s is not a vehicle event", e.Type)
	}
	if err := json.Unmarshal(e.Data, &v); err != nil {
		return v, fmt.Errorf("events: %s data: %w", e.Type, err)
	}
	return v, nil
}

const (
	specVersion = "1.0"
	contentType = "application/json"
	seqDigits   = 20 // enough for any uint64, so the padded form never needs to grow
)

// wire is the structured JSON form of an Event.
type wire struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            Type            `json:"type"`
	Subject         string          `json:"subject"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Sequence        string          `json:"sequence"`
	Data            json.RawMessage `json:"data,omitempty"`
	TraceParent     string          `json:"traceparent,omitempty"`
	TraceState      string          `json:"tracestate,omitempty"`
}

// Marshal encodes e as a CloudEvents 1.0 structured JSON event. It refuses an event that
// Unmarshal would refuse.
func Marshal(e Event) ([]byte, error) {
	w := wire{
		SpecVersion: specVersion,
		ID:          e.ID,
		Source:      e.Source,
		Type:        e.Type,
		Subject:     e.Subject,
		Time:        e.Time.UTC().Format(time.RFC3339Nano),
		Sequence:    fmt.Sprintf("%0*d", seqDigits, e.Sequence),
		Data:        e.Data,
		TraceParent: e.TraceParent,
		TraceState:  e.TraceState,
	}
	if len(e.Data) > 0 {
		w.DataContentType = contentType
	}
	if e.Time.IsZero() {
		return nil, errors.New("events: time is required")
	}
	if err := check(w, e.Sequence); err != nil {
		return nil, err
	}
	return json.Marshal(w)
}

// Unmarshal decodes a CloudEvents 1.0 structured JSON event with the attributes this package
// writes: specversion 1.0, id, source, type, subject, time (RFC 3339) and a positive decimal
// sequence (padded or not); data, if any, must be JSON; traceparent and tracestate are read if
// present. Unknown attributes are ignored, and so is a type this package does not know.
func Unmarshal(b []byte) (Event, error) {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return Event{}, fmt.Errorf("events: %w", err)
	}
	seq, err := parseSequence(w.Sequence)
	if err != nil {
		return Event{}, err
	}
	if err := check(w, seq); err != nil {
		return Event{}, err
	}
	at, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return Event{}, fmt.Errorf("events: time %q is not RFC 3339", w.Time)
	}
	return Event{
		ID: w.ID, Source: w.Source, Type: w.Type, Subject: w.Subject,
		Time: at.UTC(), Sequence: seq, Data: w.Data,
		TraceParent: w.TraceParent, TraceState: w.TraceState,
	}, nil
}

func check(w wire, seq int64) error {
	switch {
	case w.SpecVersion != specVersion:
		return fmt.Errorf("events: specversion %q, want %q", w.SpecVersion, specVersion)
	case w.ID == "", w.Source == "", w.Type == "", w.Subject == "", w.Time == "":
		return errors.New("events: id, source, type, subject and time are required")
	case seq <= 0:
		return fmt.Errorf("events: sequence %d is not positive", seq)
	case w.DataContentType != "" && w.DataContentType != contentType:
		return fmt.Errorf("events: datacontenttype %q, want %q", w.DataContentType, contentType)
	}
	return nil
}

func parseSequence(s string) (int64, error) {
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("events: sequence %q is not decimal digits", s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("events: sequence %q: %w", s, err)
	}
	return n, nil
}
