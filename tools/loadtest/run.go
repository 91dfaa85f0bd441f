package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// bench is one run's setting: the work folder, the binary, the environment of each pairing
// of stores, and what to stop or remove at the end (in reverse order).
type bench struct {
	o           options
	log         io.Writer
	work, bin   string
	shared, emb map[string]string
	stops       []func()
}

func (b *bench) close() {
	for i := len(b.stops) - 1; i >= 0; i-- {
		b.stops[i]()
	}
}

func run(ctx context.Context, o options, log io.Writer) (report, error) {
	b := &bench{o: o, log: log}
	defer b.close()
	if err := b.setUp(ctx); err != nil {
		return report{}, err
	}
	gen, err := b.generator()
	if err != nil {
		return report{}, err
	}
	sharedPop, err := b.seedWith(ctx, "seed shared", b.shared)
	if err != nil {
		return report{}, err
	}
	var embPop population
	if !o.sharedOnly {
		if embPop, err = b.seedWith(ctx, "seed embedded", b.emb); err != nil {
			return report{}, err
		}
	}
	rp, loads, pids, err := b.scenarios(ctx, sharedPop, embPop)
	if err != nil {
		return report{}, err
	}
	if err := b.rounds(ctx, gen, &rp, loads, pids); err != nil {
		return report{}, err
	}
	machine(log, o)
	return rp, nil
}

// setUp builds motorpool and starts what the PostgreSQL + Valkey instances share: a private
// Valkey, a throwaway database, one signing key.
func (b *bench) setUp(ctx context.Context) error {
	work, err := os.MkdirTemp("", "motorpool-loadtest-")
	if err != nil {
		return err
	}
	b.work = work
	if b.o.keep {
		fmt.Fprintln(b.log, "work folder:", work)
	} else {
		b.stops = append(b.stops, func() { os.RemoveAll(work) })
	}
	fmt.Fprintln(b.log, "building motorpool from", b.o.repo)
	if b.bin, err = build(ctx, b.o.repo, work); err != nil {
		return err
	}
	vk, vkAddr, err := startValkey(ctx, work)
	if err != nil {
		return err
	}
	b.stops = append(b.stops, vk.stop)
	dbURL, drop, err := createDB(ctx, b.o.pg)
	if err != nil {
		return err
	}
	b.stops = append(b.stops, drop)
	key, err := writeKey(work)
	if err != nil {
		return err
	}
	common := map[string]string{"LOG_LEVEL": b.o.logLevel, "LOG_FORMAT": "json", "JWT_ACCESS_TTL": "2h",
		"SHUTDOWN_TIMEOUT": "5s"}
	b.shared = with(common, map[string]string{"DATABASE_URL": dbURL, "VALKEY_URL": "redis://" + vkAddr,
		"JWT_PRIVATE_KEY_FILE": key})
	embDir := filepath.Join(work, "embedded")
	b.emb = with(common, map[string]string{"DATA_DIR": embDir, "SQLITE_PATH": filepath.Join(embDir, "motorpool.db")})
	return os.MkdirAll(embDir, 0o700)
}

func (b *bench) generator() (generator, error) {
	if b.o.generator != "wrk" {
		return newVegeta(b.o.conns), nil
	}
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return nil, errors.New("-generator wrk: wrk is not on PATH")
	}
	return &wrkGen{bin: bin, dir: b.work, conns: b.o.conns}, nil
}

// start runs motorpool with env (and a DATA_DIR of its own unless env names one).
func (b *bench) start(ctx context.Context, name string, env map[string]string) (*server, error) {
	return b.startBin(ctx, name, b.bin, env)
}

// startBin is start with another build of motorpool.
func (b *bench) startBin(ctx context.Context, name, bin string, env map[string]string) (*server, error) {
	dir := filepath.Join(b.work, slug(name))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if _, ok := env["DATA_DIR"]; !ok {
		env = with(env, map[string]string{"DATA_DIR": dir})
	}
	return startServer(ctx, name, dir, env, bin, "serve")
}

// seedWith seeds a store through an instance without the limiter, then stops it (the
// embedded one saves its sessions at shutdown, for the measured instance to load).
func (b *bench) seedWith(ctx context.Context, name string, env map[string]string) (population, error) {
	s, err := b.start(ctx, name, with(env, map[string]string{"RATE_LIMIT_ENABLED": "false"}))
	if err != nil {
		return population{}, err
	}
	defer s.stop()
	t := time.Now()
	pop, err := seed(ctx, s.base, b.o.users, b.o.vehicle)
	fmt.Fprintf(b.log, "%s: %d users signed in, %d vehicles, in %s\n", name, b.o.users, b.o.vehicle,
		time.Since(t).Round(time.Second))
	return pop, err
}

// scenarios starts the measured instances, each read through once, and the floor; they run
// until the end of the run. pids are the motorpool instances', for -perf.
func (b *bench) scenarios(ctx context.Context, sharedPop, embPop population) (rp report, loads []load, pids []int, err error) {
	type scenario struct {
		name string
		env  map[string]string
		pop  population
	}
	list := []scenario{{cached, with(b.shared, raised), sharedPop}}
	if !b.o.sharedOnly {
		list = append(list, scenario{uncached, with(b.shared, raised, map[string]string{"CACHE_ENABLED": "false"}), sharedPop})
	}
	list = append(list, scenario{noLimit, with(b.shared, map[string]string{"RATE_LIMIT_ENABLED": "false"}), sharedPop})
	if !b.o.sharedOnly {
		list = append(list, scenario{embedded, with(b.emb, raised), embPop})
	}
	for _, v := range b.o.variants {
		list = append(list, scenario{v.name, with(b.shared, raised, v.env), sharedPop})
	}
	bins := map[string]string{}
	if b.o.baseline != "" {
		name := cached + " at " + b.o.baseline
		list = append(list, scenario{name, with(b.shared, raised), sharedPop})
		fmt.Fprintln(b.log, "building", b.o.baseline, "of", b.o.repo)
		if bins[name], err = buildRevision(ctx, b.o.repo, b.o.baseline, b.work); err != nil {
			return report{}, nil, nil, err
		}
	}
	for _, sc := range list {
		s, err := b.startBin(ctx, sc.name, cmp.Or(bins[sc.name], b.bin), sc.env)
		if err != nil {
			return report{}, nil, nil, err
		}
		b.stops = append(b.stops, s.stop)
		if err := prime(ctx, s.base, sc.pop); err != nil {
			return report{}, nil, nil, fmt.Errorf("%s: reading every vehicle once: %w", sc.name, err)
		}
		rp.names = append(rp.names, sc.name)
		loads = append(loads, newLoad(s.base, sc.pop))
		pids = append(pids, s.cmd.Process.Pid)
	}
	self, err := os.Executable()
	if err != nil {
		return report{}, nil, nil, err
	}
	fl, err := startServer(ctx, floor, b.work, nil, self, "-hello")
	if err != nil {
		return report{}, nil, nil, err
	}
	b.stops = append(b.stops, fl.stop)
	rp.floor = len(rp.names)
	rp.names = append(rp.names, floor)
	loads = append(loads, load{base: fl.base, paths: []string{"/"}})
	return rp, loads, pids, nil
}

// rounds loads each scenario in turn, round after round, into rp.
func (b *bench) rounds(ctx context.Context, gen generator, rp *report, loads []load, pids []int) error {
	o := b.o
	fmt.Fprintf(b.log, "%d rounds of %s each after %s warm-up, %d connections, %s\n", o.rounds, o.duration,
		o.warmup, o.conns, o.generator)
	for r := range o.rounds {
		row := make([]result, len(loads))
		for i, l := range loads {
			if err := gen.warm(ctx, l, o.warmup); err != nil {
				return fmt.Errorf("%s: %w", rp.names[i], err)
			}
			var prof func() error
			if o.perf != "" && r == o.rounds-1 && rp.names[i] == cached {
				var err error
				if prof, err = startPerf(ctx, pids[i], o.perf, o.duration); err != nil {
					return err
				}
			}
			res, err := gen.measure(ctx, l, o.duration)
			if prof != nil {
				if perr := prof(); perr != nil {
					return perr
				}
				fmt.Fprintf(b.log, "perf profile of %s written to %s\n", cached, o.perf)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", rp.names[i], err)
			}
			row[i] = res
			fmt.Fprintf(b.log, "round %d %s: %.0f req/s, p50 %s ms, p99 %s ms, %d errors%s\n", r+1, rp.names[i],
				res.RPS, ms(res.P50), ms(res.P99), res.Errors, res.hitShare())
		}
		rp.rounds = append(rp.rounds, row)
	}
	return nil
}
