package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/motorpool/motorpool/broker/brokertest"
	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/internal/testproxy"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey/clustertest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }

// TestDistributed runs the plan's deployment: two users-domain and two vehicles-domain
// instances, each domain on a database of its own, events through RabbitMQ, caches and
// sessions on a Valkey Cluster. A randomized workload of registrations, updates, deletions and vehicle
// writes runs across them, through a broker outage in its middle (a proxy the test controls
// in front of RabbitMQ). After quiescence every API answer equals the databases, no vehicle
// belongs to a missing user, and no cached read is stale. It logs the figures the closing
// note reports: events relayed per second, delivery lag p50/p99, time to quiescence.
func TestDistributed(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DISTRIBUTED_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("DISTRIBUTED_SEED=%d", seed)

	usersDB, vehiclesDB := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	vc := clustertest.Open(t)
	bcfg, exchange := brokertest.Config(t, ".tap", ".users.cache", ".vehicles.cache", ".vehicles.projection")
	bu, err := url.Parse(bcfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	bproxy := testproxy.New(t, bu.Host)
	bu.Host = bproxy.Addr()

	keyFile, pubFile := jwtKeyFiles(t)
	tap := startTap(t, bcfg.URL, exchange, exchange+".tap")

	env := func(domains string) map[string]string {
		e := map[string]string{
			"SERVE_DOMAINS": domains,
			"VALKEY_URL":    "redis://" + clustertest.Addrs(t)[0], "VALKEY_KEY_PREFIX": vc.KeyPrefix(),
			"RABBITMQ_URL": bu.String(), "RABBITMQ_EXCHANGE": exchange,
			"RATE_LIMIT_ENABLED": "false", "LOG_LEVEL": "warn", "DATA_DIR": t.TempDir(),
			"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "a long admin password",
		}
		e["USERS_DATABASE_URL"], e["VEHICLES_DATABASE_URL"] = usersDB, vehiclesDB
		if domains == "users" {
			e["JWT_PRIVATE_KEY_FILE"] = keyFile
		} else {
			e["JWT_PUBLIC_KEY_FILES"] = pubFile
		}
		return e
	}
	// The first users instance creates the admin; the others find it.
	ig := &ingress{}
	for _, d := range []string{"users", "users", "vehicles", "vehicles"} {
		in := startNode(t, env(d))
		if d == "users" {
			ig.users = append(ig.users, in)
		} else {
			ig.vehicles = append(ig.vehicles, in)
		}
	}
	ig.token = loginToken(t, ig.users[0].url, "root@example.com", "a long admin password")
	_, _, body, err := ig.do("GET", "/users?email=root@example.com", nil)
	var admins struct{ Items []struct{ ID int64 } }
	if err != nil || json.Unmarshal(body, &admins) != nil || len(admins.Items) != 1 {
		t.Fatalf("the admin's id: %s %v", body, err)
	}
	adminID := admins.Items[0].ID

	w := newWorkload(ig, seed)
	start := time.Now()
	var wg sync.WaitGroup
	const workers, ops = 4, 400
	outage := make(chan struct{})
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			for n := range ops {
				if i == 0 && n == ops/3 {
					close(outage)
				}
				if err := w.step(r); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}

	// The broker goes away for two seconds while the workload runs: writes keep succeeding
	// and their events wait in the outboxes.
	<-outage
	outageFrom := time.Now()
	bproxy.Refuse()
	time.Sleep(2 * time.Second) // the outage's length, as the workload sees it
	outageTo := time.Now()
	if err := bproxy.Restore(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	workEnd := time.Now()
	if t.Failed() {
		t.FailNow()
	}

	// Quiescence: the outboxes are empty and every answer agrees with the databases.
	var last string
	quiet := waitFor(t, 60*time.Second, func() bool {
		if outboxCount(t, usersDB)+outboxCount(t, vehiclesDB) != 0 {
			last = "events are waiting in an outbox"
			return false
		}
		last = w.check(t, usersDB, vehiclesDB)
		return last == ""
	})
	if !quiet.ok {
		t.Fatalf("no quiescence within 60s after the workload; the last check found:\n%s", last)
	}
	t.Logf("workload: %d operations by %d workers in %s (%s)", workers*ops, workers, workEnd.Sub(start).Round(time.Millisecond), w.summary())
	t.Logf("FIGURE time to quiescence after the workload: %s", quiet.at.Sub(workEnd).Round(time.Millisecond))
	all := tap.lags()
	calm := tap.lagsOutside(outageFrom.Add(-500*time.Millisecond), outageTo)
	t.Logf("FIGURE delivery lag (commit to the broker's delivery to a queue): p50 %s, p99 %s of %d events committed outside the outage (and the half second before it); p50 %s, p99 %s, max %s of all %d",
		pct(calm, 50), pct(calm, 99), len(calm), pct(all, 50), pct(all, 99), pct(all, 100), len(all))

	// Every event reached the broker, none was lost: an event leaves its outbox once, counted
	// as published, when the broker confirmed it, so the distinct events delivered are exactly
	// those published. A duplicate is a batch the broker took but whose confirmation the
	// outage cut off: it stayed in the outbox, counted as a relay error, and went out again.
	published := 0.0
	for _, in := range append(slices.Clone(ig.users), ig.vehicles...) {
		published += metric(t, in.url, "motorpool_relay_published_total")
	}
	waitFor(t, 10*time.Second, func() bool { return float64(len(tap.lags())) >= published })
	if got := float64(len(tap.lags())); got != published || len(all) == 0 {
		t.Errorf("the relays published %v events; the broker delivered %d distinct ones and %d duplicates", published, len(tap.lags()), tap.duplicates())
	}

	// Relay throughput: a burst of writes while the broker is away, relayed at once when it
	// returns (timed from its first delivery, so that the relays' reconnection backoff does
	// not count).
	bproxy.Refuse()
	burstFrom := time.Now()
	const burst = 1000
	var bw sync.WaitGroup
	for i := range 8 {
		bw.Add(1)
		go func() {
			defer bw.Done()
			r := rand.New(rand.NewPCG(seed, 100+uint64(i)))
			for range burst / 8 {
				code, _, body, err := ig.do("POST", "/vehicles", vehicleBody(r, adminID))
				if err != nil || code != 201 {
					t.Errorf("burst write with the broker away: %d %s %v", code, body, err)
					return
				}
			}
		}()
	}
	bw.Wait()
	if err := bproxy.Restore(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(t, 60*time.Second, func() bool { n, _, _ := tap.received(burstFrom); return n >= burst }).ok {
		n, _, _ := tap.received(burstFrom)
		t.Fatalf("%d of the burst's %d events reached the broker in 60s", n, burst)
	}
	n, first, lastAt := tap.received(burstFrom)
	t.Logf("FIGURE relay throughput: %d events relayed in %s after the broker returned: %.0f events/s",
		n, lastAt.Sub(first).Round(time.Millisecond), float64(n-1)/lastAt.Sub(first).Seconds())
	if d := tap.duplicates(); d > 0 {
		t.Logf("%d events were delivered more than once (at-least-once; the consumers are idempotent)", d)
	}
}

type waited struct {
	ok bool
	at time.Time
}

// waitFor polls cond until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) waited {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return waited{true, time.Now()}
		}
		if time.Now().After(deadline) {
			return waited{false, time.Now()}
		}
		time.Sleep(50 * time.Millisecond) // polling a condition
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)].Round(100 * time.Microsecond)
}

func outboxCount(t *testing.T, dbURL string) int {
	t.Helper()
	var n int
	queryDB(t, dbURL, func(c *pgx.Conn) error {
		return c.QueryRow(context.Background(), "SELECT count(*) FROM outbox").Scan(&n)
	})
	return n
}

func queryDB(t *testing.T, dbURL string, f func(c *pgx.Conn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := f(c); err != nil {
		t.Fatal(err)
	}
}

// tap is a queue of the test's own bound to every event: what reached the broker, when.
type tap struct {
	mu   sync.Mutex
	seen map[string]int
	lag  []time.Duration
	at   []time.Time // commit times, as lag's
	got  []time.Time // receipt times, as lag's
}

func startTap(t *testing.T, amqpURL, exchange, queue string) *tap {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, "#", exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{seen: map[string]int{}}
	go func() {
		for d := range ds {
			now := time.Now()
			ev, err := events.Unmarshal(d.Body)
			tp.mu.Lock()
			if err == nil {
				tp.seen[ev.ID]++
				if tp.seen[ev.ID] == 1 {
					tp.lag = append(tp.lag, now.Sub(ev.Time))
					tp.at = append(tp.at, ev.Time)
					tp.got = append(tp.got, now)
				}
			}
			tp.mu.Unlock()
		}
	}()
	return tp
}

func (tp *tap) lags() []time.Duration {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return slices.Clone(tp.lag)
}

// lagsOutside are the lags of the events committed outside [from, to].
func (tp *tap) lagsOutside(from, to time.Time) []time.Duration {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var out []time.Duration
	for i, at := range tp.at {
		if at.Before(from) || at.After(to) {
			out = append(out, tp.lag[i])
		}
	}
	return out
}

// received is how many distinct events arrived, and when the first and the last of those
// committed after since did.
func (tp *tap) received(since time.Time) (n int, first, last time.Time) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for i, at := range tp.at {
		if at.Before(since) {
			continue
		}
		n++
		if first.IsZero() || tp.got[i].Before(first) {
			first = tp.got[i]
		}
		if tp.got[i].After(last) {
			last = tp.got[i]
		}
	}
	return n, first, last
}

func (tp *tap) duplicates() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	n := 0
	for _, c := range tp.seen {
		n += c - 1
	}
	return n
}

// startNode runs the program like start, stopped by cancelling its own context rather than
// by a signal to the whole test process, so that instances stop one by one.
func startNode(t *testing.T, env map[string]string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := startWith(t, ctx, env)
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-in.done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("an instance did not stop in 30s:\n%s", in.out)
		}
	})
	return in
}

// route is which domain's processes an ingress sends a path to (the README's table).
func route(path string) string {
	if strings.HasPrefix(path, "/vehicles") || (strings.HasPrefix(path, "/users/") && strings.Contains(path, "/vehicles")) {
		return "vehicles"
	}
	return "users"
}
