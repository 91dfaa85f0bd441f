// Command motorpool serves the users-and-vehicles API defined in openapi.yaml.
//
//	motorpool [serve]   run the HTTP server (migrating the database first)
//	motorpool migrate   apply pending database migrations and exit
//	motorpool version   print the version
//	motorpool help env  list the environment's settings (see settings_table.go)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/gen"
	"github.com/motorpool/motorpool/impl"
	"github.com/motorpool/motorpool/password"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/deadline"
	"github.com/motorpool/motorpool/storage/memory"
	"github.com/motorpool/motorpool/storage/valkey"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// defaultGCPercent is the collector's target when GOGC is not set. A request allocates a few
// kilobytes that die with it, and at Go's default of 100 collecting them took a fifth of the
// server's CPU under load; at 400 the heap may grow to five times what is live (tens of
// megabytes here: the client-side caches are most of it) for about a third more requests per
// second (docs/performance.md). GOGC and GOMEMLIMIT still apply as Go documents them.
const defaultGCPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout); err != nil {
		printError(os.Stderr, err)
		os.Exit(1)
	}
}

// run is the whole program; main only calls it, and tests call it on 127.0.0.1:0.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch {
	case cmd == "help" || isHelpFlag(cmd):
		return help(args[1:], stdout)
	case len(args) == 2 && isHelpFlag(args[1]) && commandUsage[cmd] != "":
		fmt.Fprintln(stdout, commandUsage[cmd])
		return nil
	}
	if cmd == "admin" {
		if len(args) < 3 || len(args) > 4 || args[1] != "create" {
			return fmt.Errorf("admin: want 'admin create EMAIL [NAME]'\n%s", usage)
		}
	} else if cmd == "token" {
		cfg, err := loadConfig(getenv, false)
		if err != nil {
			return err
		}
		return tokenCommand(ctx, cfg, args[1:], stdout)
	} else if len(args) > 1 {
		return fmt.Errorf("%s takes no arguments\n%s", cmd, usage)
	}
	switch cmd {
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "motorpool %s (%s)\n", buildVersion(), runtime.Version())
		return nil
	case "healthcheck":
		return healthcheck(ctx, getenv, stdout)
	case "serve", "migrate", "admin":
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}

	cfg, err := loadConfig(getenv, isTerminal(stdout))
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	migrated, all, err := migrateAsOwners(ctx, cfg)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if cmd == "migrate" && all { // a migration job needs no other credentials
		fmt.Fprintf(stdout, "applied %d migration(s)\n", migrated)
		return nil
	}
	dbs, applied, err := openStores(ctx, cfg)
	if err != nil {
		return err
	}
	defer dbs.close()
	applied += migrated
	switch cmd {
	case "migrate":
		fmt.Fprintf(stdout, "applied %d migration(s)\n", applied)
		return nil
	case "admin":
		if dbs.users == nil {
			return fmt.Errorf("admin create: this process does not open the users database (SERVE_DOMAINS=%s)", getenv("SERVE_DOMAINS"))
		}
		return adminCreate(ctx, deadline.Wrap(dbs.users, cfg.DBQueryTimeout), args[2:], getenv, stdout)
	}
	log.Info("starting", append([]any{"version", buildVersion(), "migrations_applied", applied}, cfg.describe()...)...)
	return serve(ctx, cfg, log, dbs, stdout)
}

// adminCreate bootstraps an admin. The password comes from the environment, never the
// command line, where other users of the machine could read it.
func adminCreate(ctx context.Context, store storage.Store, args []string, getenv func(string) string, stdout io.Writer) error {
	email, name := args[0], "Administrator"
	if len(args) > 1 {
		name = args[1]
	}
	pw := getenv("ADMIN_PASSWORD")
	if n := utf8.RuneCountInString(pw); n < 12 || n > 256 {
		return fmt.Errorf("ADMIN_PASSWORD: must be set to 12 to 256 characters")
	}
	if err := api.ValidateAs("Email", email); err != nil {
		return fmt.Errorf("admin create: %q %v", email, err)
	}
	if err := api.ValidateAs("Name", name); err != nil {
		return fmt.Errorf("admin create: name %q %v", name, err)
	}
	created, err := auth.EnsureAdmin(ctx, store, password.NewHasher(password.OWASP, 0), email, name, pw)
	if err != nil {
		return fmt.Errorf("admin create: %w", err)
	}
	if created {
		fmt.Fprintf(stdout, "created admin %s\n", email)
	} else {
		fmt.Fprintf(stdout, "a user with email %s exists; left unchanged\n", email)
	}
	return nil
}

func serve(ctx context.Context, cfg config, log *slog.Logger, dbs *stores, stdout io.Writer) error {
	tp, stopTracing, err := startTracing(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer stopTracing() // last: the events' drain at shutdown is traced too
	metrics := api.NewMetrics(dbs.stats)
	if err := metrics.Register(buildInfo()); err != nil {
		return err
	}
	caching, err := openCaching(ctx, cfg, log, metrics)
	if err != nil {
		return err
	}
	defer caching.close() // after the events' stop: their consumer invalidates through it
	// Every write invalidates the cache as it commits.
	w := dbs.wire(cfg, caching.committed())
	store := w.store
	ad, err := openAuth(ctx, cfg, log, store)
	if err != nil {
		return err
	}
	defer ad.close()
	if ad.valkey != nil {
		if err := metrics.Register(valkeyCollector(ad.valkey)); err != nil {
			return err
		}
	}
	if cfg.AdminEmail != "" && !cfg.serves(api.DomainUsers) {
		log.Info("admin bootstrap skipped: this process does not serve the users domain (its process creates the admin)")
	} else if cfg.AdminEmail != "" {
		created, err := auth.EnsureAdmin(ctx, store, ad.hasher, cfg.AdminEmail, cfg.AdminName, cfg.AdminPassword)
		if err != nil {
			return fmt.Errorf("ADMIN_EMAIL: %w", err)
		}
		log.Info("admin bootstrap", "created", created)
	}
	ev, err := startEvents(ctx, cfg, log, dbs.outboxes(), metrics, declaredQueues(cfg), eventConsumers(cfg, log, w, caching)...)
	if err != nil {
		return err
	}
	defer ev.stop() // after the HTTP server's shutdown: the last writes' events go out too
	checks := append(ad.checks, ev.checks...)
	var hasher impl.PasswordHasher // nil, not a nil *password.Hasher, without the users domain
	if ad.hasher != nil {
		hasher = ad.hasher
	}
	var server gen.StrictServerInterface = impl.New(impl.Deps{Store: store, Owners: w.owners, Hasher: hasher, Auth: ad.service, JWKS: ad.issuer.JWKS},
		impl.WithChecks(2*time.Second, checks...), impl.WithLogger(log))
	if caching.cache != nil {
		ttl := impl.DefaultCacheTTLs()
		ttl.UserList, ttl.VehList = cfg.CacheTTL, cfg.CacheTTL
		cached := impl.NewCached(server, store, caching.cache, caching.inv, ttl, log)
		if cfg.CacheWarm {
			n, err := cached.Warm(ctx)
			log.Info("cache warmed", "entries", n, "error", errString(err))
		}
		server = cached
	}
	var limits *api.RateLimitConfig
	if cfg.RateLimitEnabled {
		rl := cfg.RateLimit
		rl.Fallback = memory.NewLimiter(nil)
		rl.Store = rl.Fallback // embedded mode: the in-process limiter is the store
		if ad.valkey != nil {
			rl.Store = valkey.NewLimiter(ad.valkey, rl.Timeout)
		}
		limits = &rl
	}
	handler, err := api.NewHandler(server, api.Config{
		Logger: log, Metrics: metrics, Auth: ad.service, TrustedProxies: cfg.TrustedProxies, RateLimit: limits,
		CORSAllowedOrigins: cfg.CORSAllowedOrigins,
		Domains:            cfg.Domains,
		Tracing:            tp != nil,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR=%s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{
		Handler:           traced(tp, handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	base := baseURL(ln.Addr())
	fmt.Fprintf(stdout, "motorpool listening on %s\nSwagger UI: %s/docs/\n", base, base)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout_ms", cfg.ShutdownTimeout.Milliseconds())
	// In-flight requests keep their own contexts (the server's base context is not ctx), so
	// they finish; Shutdown waits for them up to the timeout.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if err := ad.service.WaitMail(sctx); err != nil {
		log.Warn("reset mails still in flight at shutdown", "error", err.Error())
	}
	if err := ad.service.WaitTouches(sctx); err != nil {
		log.Warn("session touches still in flight at shutdown", "error", err.Error())
	}
	log.Info("stopped")
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// baseURL is how a person on this machine reaches the listener.
func baseURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
