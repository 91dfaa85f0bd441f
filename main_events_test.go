package main

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/broker/brokertest"
	"github.com/motorpool/motorpool/events"
)

// metric reads one unlabelled value from /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
}

// TestRunRelaysEventsToRabbitMQ: a registration's USER_CREATED reaches RabbitMQ as a
// CloudEvent on the configured exchange; the outbox empties and the metrics and /readyz say so.
func TestRunRelaysEventsToRabbitMQ(t *testing.T) {
	cfg, name := brokertest.Config(t, ".q", ".users-vehicles.cache") // the test's queue, and the cache consumer's
	url, exchange := cfg.URL, cfg.Exchange
	sub := broker.Subscription{Queue: name + ".q", Keys: []string{"#"}, MaxDeliveries: 3}
	if err := broker.Declare(t.Context(), cfg, sub); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := start(t, map[string]string{"DATA_DIR": dir, "SQLITE_PATH": filepath.Join(dir, "m.db"), "RABBITMQ_URL": url, "RABBITMQ_EXCHANGE": exchange})
	defer in.stop(t)
	if code, body := post(t, in.url+"/users", `{"email":"ev@example.com","name":"Ev","password":"correct horse battery"}`); code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, body)
	}
	got := make(chan events.Event, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- broker.Consume(ctx, cfg, sub, func(_ context.Context, d broker.Delivery) error {
			e, err := events.Unmarshal(d.Body)
			if err == nil {
				select {
				case got <- e:
				default:
				}
			}
			return err
		}, nil)
	}()
	select {
	case e := <-got:
		u, err := e.User()
		if e.Type != events.UserCreated || err != nil || u.Email != "ev@example.com" || e.Sequence != 1 {
			t.Errorf("event %+v (%+v, %v), want USER_CREATED of ev@example.com, sequence 1", e, u, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event reached RabbitMQ within 10 s of the registration")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Consume: %v", err)
	}
	eventually(t, "an empty outbox", func() bool { return metric(t, in.url, "motorpool_outbox_backlog") == 0 })
	if n := metric(t, in.url, "motorpool_relay_published_total"); n < 1 {
		t.Errorf("motorpool_relay_published_total = %v, want at least 1", n)
	}
	if code, body := get(t, in.url+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"broker"`) || !strings.Contains(body, `"outbox"`) {
		t.Errorf("/readyz: %d %s; want 200 with the broker and outbox checks", code, body)
	}
}

// TestRunRelaysInProcess: without RabbitMQ the outbox still empties: its events are relayed
// within the process.
func TestRunRelaysInProcess(t *testing.T) {
	dir := t.TempDir()
	in := start(t, map[string]string{"DATA_DIR": dir, "SQLITE_PATH": filepath.Join(dir, "m.db")})
	defer in.stop(t)
	for _, email := range []string{"a@example.com", "b@example.com"} {
		if code, body := post(t, in.url+"/users", `{"email":"`+email+`","name":"A","password":"correct horse battery"}`); code != http.StatusCreated {
			t.Fatalf("register: %d %s", code, body)
		}
	}
	eventually(t, "an empty outbox", func() bool {
		return metric(t, in.url, "motorpool_outbox_backlog") == 0 && metric(t, in.url, "motorpool_relay_published_total") >= 2
	})
	if code, body := get(t, in.url+"/readyz"); code != http.StatusOK || strings.Contains(body, `"broker"`) {
		t.Errorf("/readyz: %d %s; want 200 with no broker check", code, body)
	}
}
