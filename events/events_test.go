package events_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/motorpool/motorpool/events"
)

var at = time.Date(2025, 5, 1, 9, 30, 0, 123456000, time.FixedZone("CEST", 2*3600))

func vehicleEvent(t *testing.T, seq int64) events.Event {
	t.Helper()
	color := "blue"
	ev, err := events.New(events.VehicleUpdated, 7, seq, at, events.Vehicle{
		ID: 7, UserID: 42, Make: "Toyota", Model: "Corolla", Year: 2021, VIN: "1HGCM82633A004352",
		LicensePlate: "AB-123-CD", Color: &color, CreatedAt: at.UTC(), UpdatedAt: at.UTC(), PreviousUserID: 41,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return ev
}

// The JSON is a CloudEvents 1.0 structured event: its attributes under their names, the
// sequence extension as a zero-padded string, the time in UTC.
func TestMarshalIsCloudEvent(t *testing.T) {
	ev := vehicleEvent(t, 3)
	b, err := events.Marshal(ev)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	want := map[string]any{
		"specversion":     "1.0",
		"id":              ev.ID,
		"source":          "/motorpool/vehicles",
		"type":            "VEHICLE_UPDATED",
		"subject":         "7",
		"time":            "2025-05-01T07:30:00.123456Z",
		"datacontenttype": "application/json",
		"sequence":        "00000000000000000003",
		"data": map[string]any{
			"id": 7.0, "userId": 42.0, "make": "Toyota", "model": "Corolla", "year": 2021.0,
			"vin": "1HGCM82633A004352", "licensePlate": "AB-123-CD", "color": "blue",
			"createdAt": "2025-05-01T07:30:00.123456Z", "updatedAt": "2025-05-01T07:30:00.123456Z",
			"previousUserId": 41.0,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event JSON (-want +got):\n%s", diff)
	}
	if _, err := uuid.Parse(ev.ID); err != nil {
		t.Errorf("id %q is not a UUID: %v", ev.ID, err)
	}
}

func TestRoundTrip(t *testing.T) {
	ev := vehicleEvent(t, 12)
	b, err := events.Marshal(ev)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := events.Unmarshal(b)
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if diff := cmp.Diff(ev, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if id, err := got.AggregateID(); err != nil || id != 7 {
		t.Errorf("AggregateID = %d, %v; want 7", id, err)
	}
	v, err := got.Vehicle()
	if err != nil || v.PreviousUserID != 41 || v.UserID != 42 || *v.Color != "blue" {
		t.Errorf("Vehicle() = %+v, %v", v, err)
	}
	if _, err := got.User(); err == nil {
		t.Errorf("User() of a vehicle event succeeded")
	}
}

// The trace context of the write travels as CloudEvents' distributed tracing extension, and
// only when there is one: an untraced event's JSON has neither attribute.
func TestTraceContextRoundTrip(t *testing.T) {
	ev := vehicleEvent(t, 4)
	ev.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ev.TraceState = "vendor=x"
	b, err := events.Marshal(ev)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var attrs map[string]any
	if err := json.Unmarshal(b, &attrs); err != nil || attrs["traceparent"] != ev.TraceParent || attrs["tracestate"] != "vendor=x" {
		t.Errorf("traced event JSON %s (%v): want traceparent and tracestate", b, err)
	}
	got, err := events.Unmarshal(b)
	if err != nil || got.TraceParent != ev.TraceParent || got.TraceState != ev.TraceState {
		t.Errorf("Unmarshal = %+v, %v; want the trace context back", got, err)
	}
	plain, _ := events.Marshal(vehicleEvent(t, 4))
	if strings.Contains(string(plain), "trace") {
		t.Errorf("untraced event JSON %s names a trace", plain)
	}
}

// Sequences compare as strings the way they compare as numbers, as the extension requires.
func TestSequenceSorts(t *testing.T) {
	seqs := []int64{10, 9, 1, 100, 11, 1 << 40}
	var strs []string
	for _, n := range seqs {
		b, err := events.Marshal(vehicleEvent(t, n))
		if err != nil {
			t.Fatal(err)
		}
		var w struct{ Sequence string }
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		strs = append(strs, w.Sequence)
	}
	slices.Sort(seqs)
	slices.Sort(strs)
	for i, s := range strs {
		ev, err := events.Unmarshal(minimal(s))
		if err != nil || ev.Sequence != seqs[i] {
			t.Errorf("sorted sequence %d is %q (%d, %v), want %d", i, s, ev.Sequence, err, seqs[i])
		}
	}
}

// minimal is the JSON of a valid event with the fewest attributes, and sequence seq.
func minimal(seq string) []byte {
	return []byte(`{"specversion":"1.0","id":"x","source":"/motorpool/users","type":"USER_CREATED","subject":"1","time":"2025-05-01T07:30:00Z","sequence":"` + seq + `"}`)
}

func TestUnmarshalLenient(t *testing.T) {
	// Other producers' extensions and types this package does not know are no error; nor is an
	// unpadded sequence or a time with an offset.
	b := []byte(`{"specversion":"1.0","id":"x","source":"/elsewhere","type":"FLEET_RENAMED","subject":"5",
		"time":"2025-05-01T09:30:00+02:00","sequence":"17","partitionkey":"fleet-5","data":{"a":1}}`)
	ev, err := events.Unmarshal(b)
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	want := events.Event{
		ID: "x", Source: "/elsewhere", Type: "FLEET_RENAMED", Subject: "5",
		Time: time.Date(2025, 5, 1, 7, 30, 0, 0, time.UTC), Sequence: 17, Data: json.RawMessage(`{"a":1}`),
	}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("Unmarshal (-want +got):\n%s", diff)
	}
	if ev.Type.Aggregate() != "" {
		t.Errorf("unknown type's Aggregate = %q, want empty", ev.Type.Aggregate())
	}
}

func TestUnmarshalRejects(t *testing.T) {
	valid := string(minimal("1"))
	for name, b := range map[string]string{
		"not JSON":         `{"specversion":`,
		"spec 0.3":         strings.Replace(valid, `"1.0"`, `"0.3"`, 1),
		"no id":            strings.Replace(valid, `"id":"x",`, ``, 1),
		"no subject":       strings.Replace(valid, `"subject":"1",`, ``, 1),
		"no time":          strings.Replace(valid, `"time":"2025-05-01T07:30:00Z",`, ``, 1),
		"bad time":         strings.Replace(valid, `2025-05-01T07:30:00Z`, `yesterday`, 1),
		"no sequence":      strings.Replace(valid, `,"sequence":"1"`, ``, 1),
		"sequence zero":    strings.Replace(valid, `"sequence":"1"`, `"sequence":"000"`, 1),
		"sequence signed":  strings.Replace(valid, `"sequence":"1"`, `"sequence":"+1"`, 1),
		"sequence number":  strings.Replace(valid, `"sequence":"1"`, `"sequence":1`, 1),
		"sequence too big": strings.Replace(valid, `"sequence":"1"`, `"sequence":"99999999999999999999"`, 1),
		"content type":     strings.Replace(valid, `"sequence"`, `"datacontenttype":"text/xml","sequence"`, 1),
	} {
		if ev, err := events.Unmarshal([]byte(b)); err == nil {
			t.Errorf("Unmarshal %s = %+v, want an error", name, ev)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := events.New("USER_RENAMED", 1, 1, at, events.User{}); err == nil {
		t.Errorf("New with an unknown type succeeded")
	}
	if _, err := events.New(events.UserCreated, 1, 0, at, events.User{}); err == nil {
		t.Errorf("New with sequence 0 succeeded")
	}
	if _, err := events.Marshal(events.Event{ID: "x", Source: "s", Type: events.UserCreated, Subject: "1", Sequence: 1}); err == nil {
		t.Errorf("Marshal without a time succeeded")
	}
}

func TestNewIDsAreFresh(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		ev, err := events.New(events.UserDeleted, 1, 2, at, events.User{ID: 1})
		if err != nil {
			t.Fatal(err)
		}
		if seen[ev.ID] {
			t.Fatalf("New repeated id %s", ev.ID)
		}
		seen[ev.ID] = true
		if ev.Source != "/motorpool/users" || ev.Subject != "1" || ev.Time.Location() != time.UTC {
			t.Fatalf("New = %+v", ev)
		}
	}
}
