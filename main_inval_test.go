package main

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/broker/brokertest"
	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/internal/testproxy"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
	"github.com/motorpool/motorpool/token"
)

// buildBinary builds the program into a directory of t's, for tests that must signal one
// instance alone (SIGKILL, or SIGTERM while another runs in this process).
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "motorpool")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is the program running as a child process.
type proc struct {
	cmd  *exec.Cmd
	url  string
	out  *procOutput
	done chan error
}

// procOutput is what a child wrote, for failure messages.
type procOutput struct {
	mu sync.Mutex
	b  strings.Builder
}

func (o *procOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *procOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func startProc(t *testing.T, bin string, env map[string]string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"HTTP_ADDR=127.0.0.1:0", "LOG_FORMAT=json"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{cmd: cmd, out: &procOutput{}, done: make(chan error, 1)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	var scanned sync.WaitGroup
	scanned.Add(1)
	go func() {
		defer scanned.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			_, _ = p.out.Write(append(sc.Bytes(), '\n'))
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	go func() {
		scanned.Wait()
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.url = <-urls:
	case err := <-p.done:
		t.Fatalf("the program exited before listening: %v\n%s", err, p.out)
	case <-time.After(60 * time.Second):
		t.Fatalf("no listening line in 60s:\n%s", p.out)
	}
	eventually(t, "/healthz of the child", func() bool { code, _ := get(t, p.url+"/healthz"); return code == http.StatusOK })
	return p
}

// signal sends sig and waits for the process to end.
func (p *proc) signal(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("the program did not end after %v:\n%s", sig, p.out)
		return nil
	}
}

// invalSetup is one PostgreSQL database and one Valkey prefix, with RabbitMQ when broker is
// true, and the environment of an instance that reaches Valkey (and RabbitMQ) through proxies
// the test controls.
type invalSetup struct {
	env        map[string]string // an instance's, through the proxies
	direct     map[string]string // an instance's, straight to the servers
	valkey     *testproxy.Proxy
	rabbit     *testproxy.Proxy // nil without RabbitMQ
	brokerCfg  broker.Config
	queuesName string
}

func newInvalSetup(t *testing.T, withBroker bool) invalSetup {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "jwt.pem")
	if _, err := token.LoadOrCreateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	vc := valkeytest.Open(t)
	vaddr := os.Getenv("TEST_VALKEY_ADDR")
	if vaddr == "" {
		vaddr = "127.0.0.1:6379"
	}
	s := invalSetup{valkey: testproxy.New(t, vaddr)}
	common := map[string]string{
		"DATABASE_URL": pgtest.NewDatabase(t), "VALKEY_KEY_PREFIX": vc.KeyPrefix(), "JWT_PRIVATE_KEY_FILE": keyFile,
		"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "a long admin password",
		// Registration is the write here: it needs no session, which Valkey holds (and which
		// fails closed while it is away); the limiter would fail it closed too.
		"RATE_LIMIT_ENABLED": "false",
	}
	s.env, s.direct = map[string]string{"VALKEY_URL": "redis://" + s.valkey.Addr()}, map[string]string{"VALKEY_URL": "redis://" + vaddr}
	if withBroker {
		// The cache consumer's queue is <exchange>.users-vehicles.cache; ".q" is the test's.
		s.brokerCfg, s.queuesName = brokertest.Config(t, ".q", ".users-vehicles.cache")
		host := strings.TrimPrefix(strings.TrimSuffix(brokertest.URL(t), "/"), "amqp://guest:guest@")
		s.rabbit = testproxy.New(t, host)
		s.env["RABBITMQ_URL"] = "amqp://guest:guest@" + s.rabbit.Addr() + "/"
		s.direct["RABBITMQ_URL"] = s.brokerCfg.URL
		s.env["RABBITMQ_EXCHANGE"], s.direct["RABBITMQ_EXCHANGE"] = s.brokerCfg.Exchange, s.brokerCfg.Exchange
	}
	for k, v := range common {
		s.env[k], s.direct[k] = v, v
	}
	return s
}

func (s invalSetup) instanceEnv(t *testing.T, through bool) map[string]string {
	src := s.direct
	if through {
		src = s.env
	}
	out := map[string]string{"DATA_DIR": t.TempDir()}
	for k, v := range src {
		out[k] = v
	}
	return out
}

// emailLookup is GET /users?email= as the admin: cached at user:email:{email} for 10 minutes,
// an empty page included.
func emailLookup(t *testing.T, base, tok, email string) string {
	t.Helper()
	code, body := getWith(t, base+"/users?email="+email, tok)
	if code != http.StatusOK {
		t.Fatalf("GET /users?email=%s: %d %s", email, code, body)
	}
	return body
}

// TestRunLostInvalidation: an instance that cannot reach Valkey writes (the write succeeds, its
// invalidation does not), and is stopped and started again; the write is visible afterwards on
// another instance whose cached read it made stale, which would have served the old answer for
// its TTL (10 minutes) when the invalidation lived in the first instance's memory only.
func TestRunLostInvalidation(t *testing.T) {
	bin := buildBinary(t)
	for _, withBroker := range []bool{false, true} {
		t.Run(map[bool]string{false: "in process", true: "rabbitmq"}[withBroker], func(t *testing.T) {
			s := newInvalSetup(t, withBroker)
			a := startProc(t, bin, s.instanceEnv(t, true))
			b := start(t, s.instanceEnv(t, false))
			defer b.stop(t)
			tok := loginToken(t, b.url, "root@example.com", "a long admin password")
			emailLookup(t, b.url, tok, "ada@example.com")
			if body := emailLookup(t, b.url, tok, "ada@example.com"); strings.Contains(body, "ada@example.com") {
				t.Fatalf("setup: ada already exists: %s", body)
			}

			s.valkey.Refuse()
			if code, body := post(t, a.url+"/users", `{"email":"ada@example.com","name":"Ada","password":"correct horse battery"}`); code != http.StatusCreated {
				t.Fatalf("register on the instance cut off from Valkey: %d %s", code, body)
			}
			wrote := time.Now()
			if err := a.signal(t, syscall.SIGTERM); err != nil {
				t.Logf("stopping A: %v", err)
			}
			if err := s.valkey.Restore(); err != nil {
				t.Fatal(err)
			}
			a = startProc(t, bin, s.instanceEnv(t, true))
			eventually(t, "the registration visible on B through its cache", func() bool {
				return strings.Contains(emailLookup(t, b.url, tok, "ada@example.com"), "ada@example.com")
			})
			t.Logf("B served the registration %v after the write (A stopped and started in between)", time.Since(wrote).Round(time.Millisecond))
			if err := a.signal(t, syscall.SIGTERM); err != nil {
				t.Logf("stopping A: %v", err)
			}
		})
	}
}

// TestRunKilledBetweenCommitAndRelay: an instance whose write committed while neither Valkey
// nor RabbitMQ answered is killed (SIGKILL: no shutdown, no drain); started again, it relays
// the event to RabbitMQ and the cached read the write made stale is fresh.
func TestRunKilledBetweenCommitAndRelay(t *testing.T) {
	bin := buildBinary(t)
	s := newInvalSetup(t, true)
	sub := broker.Subscription{Queue: s.queuesName + ".q", Keys: []string{"#"}, MaxDeliveries: 3}
	if err := broker.Declare(t.Context(), s.brokerCfg, sub); err != nil {
		t.Fatal(err)
	}
	env := s.instanceEnv(t, true)
	a := startProc(t, bin, env)
	tok := loginToken(t, a.url, "root@example.com", "a long admin password")
	emailLookup(t, a.url, tok, "ada@example.com") // cached: no such user, for 10 minutes

	s.valkey.Refuse()
	s.rabbit.Refuse()
	if code, body := post(t, a.url+"/users", `{"email":"ada@example.com","name":"Ada","password":"correct horse battery"}`); code != http.StatusCreated {
		t.Fatalf("register with Valkey and RabbitMQ away: %d %s", code, body)
	}
	if err := a.signal(t, syscall.SIGKILL); err == nil {
		t.Fatal("the killed program exited cleanly")
	}
	if err := s.valkey.Restore(); err != nil {
		t.Fatal(err)
	}
	if err := s.rabbit.Restore(); err != nil {
		t.Fatal(err)
	}

	got := make(chan events.Event, 16)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	consumed := make(chan error, 1)
	go func() {
		consumed <- broker.Consume(ctx, s.brokerCfg, sub, func(_ context.Context, d broker.Delivery) error {
			e, err := events.Unmarshal(d.Body)
			if err == nil {
				got <- e
			}
			return err
		}, nil)
	}()
	a = startProc(t, bin, env)
	defer func() { _ = a.signal(t, syscall.SIGTERM) }()
	deadline := time.After(15 * time.Second)
	for found := false; !found; {
		select {
		case e := <-got:
			if u, err := e.User(); err == nil && e.Type == events.UserCreated && u.Email == "ada@example.com" {
				found = true
			}
		case <-deadline:
			t.Fatalf("the registration's USER_CREATED never reached RabbitMQ after the restart:\n%s", a.out)
		}
	}
	eventually(t, "the registration visible through the cache after the restart", func() bool {
		return strings.Contains(emailLookup(t, a.url, tok, "ada@example.com"), "ada@example.com")
	})
	cancel()
	<-consumed
	if code, body := get(t, a.url+"/readyz"); code != http.StatusOK {
		t.Errorf("readyz after the restart: %d %s", code, body)
	}
}
