// Command loadtest measures motorpool on loopback: it builds the checkout, starts it in four
// scenarios (PostgreSQL + Valkey cached, uncached and with the limiter off; embedded SQLite +
// memory) beside a bare net/http hello-world floor, loads each in turn in interleaved rounds
// with 1,000 signed-in users reading random vehicles among 10,000, and prints a Markdown table
// with each scenario's ratio to the floor. `make loadtest` runs it; see docs/performance.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type options struct {
	repo, pg, generator, logLevel, perf string
	baseline                            string
	rounds, conns, users, vehicle       int
	duration, warmup                    time.Duration
	keep, sharedOnly                    bool
	variants                            variants
}

func main() {
	var o options
	hello := flag.Bool("hello", false, "serve the net/http floor on HTTP_ADDR and nothing else (the run starts itself so)")
	flag.StringVar(&o.repo, "repo", "..", "the motorpool checkout to build")
	flag.StringVar(&o.pg, "pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"a loopback PostgreSQL to create the throwaway database on")
	flag.StringVar(&o.generator, "generator", "vegeta", "vegeta (in process) or wrk (needs wrk on PATH)")
	flag.StringVar(&o.logLevel, "log-level", "warn", "LOG_LEVEL of the instances (info logs every request)")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario and round")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement")
	flag.IntVar(&o.conns, "conns", 32, "connections")
	flag.IntVar(&o.users, "users", 1000, "signed-in users, each with its own token")
	flag.IntVar(&o.vehicle, "vehicles", 10000, "vehicles read at random")
	flag.StringVar(&o.perf, "perf", "", "record a perf CPU profile (perf.data) of the cached full stack's server in the last round into this file")
	flag.BoolVar(&o.keep, "keep", false, "keep the work folder (logs, binary) instead of removing it")
	flag.BoolVar(&o.sharedOnly, "shared-only", false, "measure only the cached full stack, the limiter off, the variants and the floor (no uncached or embedded scenario)")
	flag.StringVar(&o.baseline, "baseline", "", "a git revision of the checkout to build too and measure as one more cached full stack, to compare a change within one run")
	flag.Var(&o.variants, "variant", "NAME:K=V,K=V... adds a scenario: the cached full stack with these settings too (repeatable), to compare a setting within one run")
	flag.Parse()
	if *hello {
		fmt.Fprintln(os.Stderr, serveHello(os.Getenv("HTTP_ADDR")))
		os.Exit(1)
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rp, err := run(ctx, o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
	valid := finish(os.Stdout, rp)
	if o.perf != "" {
		fmt.Fprintf(os.Stdout, "\nWhere the cached full stack's server spent its CPU (perf, last round):\n\n")
		if err := profileLayers(ctx, os.Stdout, o.perf); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
	}
	if !valid {
		os.Exit(1)
	}
}

func (o options) check() error {
	switch {
	case o.rounds < 1, o.conns < 1, o.users < 1, o.vehicle < 1:
		return errors.New("-rounds, -conns, -users and -vehicles must be at least 1")
	case o.duration <= 0, o.warmup < 0:
		return errors.New("-duration must be positive and -warmup not negative")
	case o.generator != "vegeta" && o.generator != "wrk":
		return fmt.Errorf("-generator %q: vegeta or wrk", o.generator)
	}
	_, err := loopbackURL(o.pg)
	return err
}

// finish prints the table and the verdict; it reports false when the run is invalid.
func finish(w io.Writer, rp report) bool {
	rp.write(w)
	if x, ok := rp.between(cached, uncached); ok {
		fmt.Fprintf(w, "\ncached / uncached: %.2fx (median of per-round ratios)\n", x)
	}
	if bad := rp.invalid(); len(bad) > 0 {
		fmt.Fprintln(w, "\nINVALID RUN: every answer must be 2xx (a refused or failed request is not the scenario measured):")
		for _, b := range bad {
			fmt.Fprintln(w, "- "+b)
		}
		return false
	}
	fmt.Fprintln(w, "\nvalid run: 0 errors in every scenario and round")
	return true
}

const (
	cached   = "full stack, cached"
	uncached = "full stack, uncached"
	noLimit  = "full stack, limiter off"
	embedded = "embedded (SQLite + memory)"
	floor    = "net/http floor"
)

// raised keeps the limiter on but never refusing: per-IP rules are not scaled by role
// (and all the load comes from 127.0.0.1), so the per-IP maximum is raised as well as the
// per-user one and the multipliers (getVehicle's 60/min per user becomes 60,000/min).
var raised = map[string]string{
	"RATE_LIMIT_IP_MAX": "1000000000", "RATE_LIMIT_USER_MAX": "1000000000",
	"RATE_LIMIT_ROLE_MULTIPLIERS": "admin=1000,user=1000,guest=0.5",
}

func with(base map[string]string, more ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range append([]map[string]string{base}, more...) {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// machine says what the figures were taken on.
func machine(w io.Writer, o options) {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	rev, _ := exec.Command("git", "-C", o.repo, "rev-parse", "--short", "HEAD").Output()
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s/%s, %s; motorpool %s\n", runtime.NumCPU(), cpu, runtime.GOOS,
		runtime.GOARCH, runtime.Version(), strings.TrimSpace(string(rev)))
}
