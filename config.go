package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/mail"
)

// config is the service's whole configuration, read from the environment with the plan's
// variable names by the table of settings (settings_table*.go).
type config struct {
	HTTPAddr        string
	DatabaseURL     string        // PostgreSQL when set
	DBParts         dbParts       // DB_HOST and its companions: DatabaseURL when DATABASE_URL is unset
	MigrateURL      string        // MIGRATE_DATABASE_URL: the migrations' role, the tables' owner; DatabaseURL when empty
	UsersDB         dbURLs        // USERS_DATABASE_URL, falling back to DatabaseURL
	VehiclesDB      dbURLs        // VEHICLES_DATABASE_URL, falling back to DatabaseURL
	OwnerWait       time.Duration // VEHICLES_OWNER_WAIT: see split.Config.OwnerWait
	SQLitePath      string        // used when DatabaseURL is empty
	DBMaxConns      int32
	DBMinConns      int32
	DBConnTimeout   time.Duration
	DBConnLifetime  time.Duration
	DBConnIdleTime  time.Duration
	DBQueryTimeout  time.Duration // bound on each database call
	ShutdownTimeout time.Duration
	LogLevel        slog.Level
	LogFormat       string // json or text
	GCPercent       int    // GOGC, which the Go runtime reads itself (main sets the default); -1 is off

	Domains []api.Domain // SERVE_DOMAINS: the domains whose routes this process serves

	// Auth state: Valkey when an address is configured, else in process (embedded mode).
	ValkeyURL      string     // VALKEY_URL as given; the fields below are read from it
	RedisParts     redisParts // REDIS_HOST and its companions, used when VALKEY_URL is unset
	ValkeyAddr     string
	ValkeyUser     string
	ValkeyPassword string
	ValkeyDB       int
	ValkeyTLS      bool
	ValkeyPrefix   string

	DataDir           string   // embedded mode keeps its signing key here
	JWTPrivateKeyFile string   // required with Valkey: every instance must sign alike
	JWTPublicKeyFiles []string // verification-only keys (rotation)
	JWTIssuer         string
	JWTAudience       string
	Auth              auth.Config
	TrustedProxies    []netip.Prefix
	// CORSAllowedOrigins (CORS_ALLOWED_ORIGINS): see api.Config.CORSAllowedOrigins.
	CORSAllowedOrigins []string
	AdminEmail         string
	AdminName          string
	AdminPassword      string
	SMTP               mail.SMTPConfig // used when SMTP.Host is set, else reset links are logged

	CacheEnabled bool          // CACHE_ENABLED
	CacheTTL     time.Duration // REDIS_CACHE_TTL: the TTL of keys without one of their own in the plan: the list pages (5m)
	CacheMax     int           // REDIS_CACHE_MAX: entries of the in-process cache
	CacheWarm    bool          // CACHE_WARM

	// AuthStateCacheTTL (AUTH_STATE_CACHE_TTL): cap on a session or denylist entry served from
	// the Valkey client-side cache (5s); 0 reads Valkey on every request.
	AuthStateCacheTTL time.Duration

	Events eventsConfig

	Tracing tracingConfig // OTEL_*: off unless an OTLP endpoint is set

	RateLimitEnabled bool
	RateLimit        api.RateLimitConfig // stores are set in main
}

// configError is one refused setting, naming the variable, so that it prints as one line.
type configError struct{ name, value, why string }

func (e *configError) Error() string {
	if e.value == "" {
		return fmt.Sprintf("%s: %s", e.name, e.why)
	}
	return fmt.Sprintf("%s=%q: %s", e.name, e.value, e.why)
}

// configErrors are every refused setting of one load, a line each, so that one start shows
// every fault.
type configErrors []error

func (e configErrors) Error() string {
	lines := make([]string, len(e))
	for i, err := range e {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

func (e configErrors) Unwrap() []error { return e }

// firstPerVariable keeps a variable's first error: its own value's, before what the checks
// between variables then find amiss about it (a consequence, most often).
func (e configErrors) firstPerVariable() configErrors {
	var out configErrors
	seen := map[string]bool{}
	for _, err := range e {
		if ce, ok := err.(*configError); ok {
			if seen[ce.name] {
				continue
			}
			seen[ce.name] = true
		}
		out = append(out, err)
	}
	return out
}

// loadConfig reads the configuration through the table of settings: each variable's own value
// first, then the checks between variables. It refuses the configuration with every fault
// found, not the first alone.
func loadConfig(getenv func(string) string, terminal bool) (config, error) {
	// What no variable sets comes from the packages' defaults; the table's defaults agree with
	// theirs (TestSettingsDefaults).
	c := config{Auth: auth.DefaultConfig(), RateLimit: api.DefaultRateLimitConfig(), LogFormat: "json"}
	if terminal {
		c.LogFormat = "text"
	}
	given, errs := readSettings(&c, getenv)
	checkDatabases(&c, given, &errs)
	if c.DBMaxConns > 0 && c.DBMinConns > c.DBMaxConns {
		errs = append(errs, &configError{"DB_MIN_CONNS", strconv.Itoa(int(c.DBMinConns)), "must not exceed DB_MAX_CONNS"})
	}
	checkAuth(&c, given, &errs)
	checkDatabaseLayout(&c, &errs)
	if len(errs) > 0 {
		return config{}, errs.firstPerVariable()
	}
	return c, nil
}

// httpAddr reads HTTP_ADDR, a host:port to listen on.
var httpAddr = reader{
	parse: func(c *config, v string) error {
		_, port, err := net.SplitHostPort(v)
		if err != nil {
			return errors.New("must be host:port, e.g. :8080 or 127.0.0.1:8080")
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return errors.New("the port must be a number from 0 to 65535")
		}
		c.HTTPAddr = v
		return nil
	},
	show: func(c *config) string { return c.HTTPAddr },
}

var serveDomains = reader{
	parse: func(c *config, v string) error {
		d, err := api.ParseDomains(v)
		if err != nil {
			return err
		}
		c.Domains = d
		return nil
	},
	show: func(c *config) string { return strings.Join(c.domainNames(), ",") },
}

var logLevel = reader{
	parse: func(c *config, v string) error {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return errors.New("must be debug, info, warn or error")
		}
		return nil
	},
	show: func(c *config) string { return strings.ToLower(c.LogLevel.String()) },
}

// gogc reads GOGC as the Go runtime does, refusing what the runtime would silently take
// for 100; main sets the table's default when GOGC is unset.
var gogc = reader{
	parse: func(c *config, v string) error {
		if v == "off" {
			c.GCPercent = -1
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errors.New("must be off or a percentage such as 100")
		}
		c.GCPercent = n
		return nil
	},
	show: func(c *config) string {
		if c.GCPercent < 0 {
			return "off"
		}
		return strconv.Itoa(c.GCPercent)
	},
}

// serves reports whether the process serves every one of domains.
func (c config) serves(domains ...api.Domain) bool {
	for _, d := range domains {
		if !slices.Contains(c.Domains, d) {
			return false
		}
	}
	return true
}

func (c config) domainNames() []string {
	var names []string
	for _, d := range c.Domains {
		names = append(names, string(d))
	}
	return names
}

// maskURL hides a URL's password, and any query parameter named like password, for printing.
// What is not a URL with a host is hidden whole: a password put there by mistake, or one in a
// URL that does not parse as one with user info, would show otherwise.
func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "(hidden: not a URL with a host)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q, masked := u.Query(), false
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
			masked = true
		}
	}
	if masked {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// describe lists the effective configuration with secrets masked: what the settings amount
// to (the stores, the mailer...), then each setting of the table.
func (c config) describe() []any {
	store := "sqlite " + c.SQLitePath
	migrations := "as the store"
	var stores, owners []string
	for _, d := range c.databases() {
		name := ""
		if d.domain != "" {
			name = string(d.domain) + ": "
		}
		if d.URL != "" {
			stores = append(stores, name+"postgres "+maskURL(d.URL))
		}
		if d.MigrateURL != "" {
			owners = append(owners, name+"postgres "+maskURL(d.MigrateURL))
		}
	}
	if len(stores) > 0 {
		store = strings.Join(stores, ", ")
	}
	if len(owners) > 0 {
		migrations = strings.Join(owners, ", ")
	}
	state := "memory (embedded)"
	if c.ValkeyAddr != "" {
		state = "valkey " + c.ValkeyAddr
	}
	mailer := "log (reset links are logged, not sent)"
	if c.SMTP.Host != "" {
		mailer = "smtp " + c.SMTP.Host
	}
	cache := "off"
	if c.CacheEnabled {
		cache = "memory (embedded), " + strconv.Itoa(c.CacheMax) + " entries"
		if c.ValkeyAddr != "" {
			cache = "valkey " + c.ValkeyAddr + " with client-side caching"
		}
	}
	limits := "off"
	if c.RateLimitEnabled {
		limits = fmt.Sprintf("%s, %d/IP and %d/user per %s, default %d, fail %s", c.RateLimit.Algorithm,
			c.RateLimit.IPMax, c.RateLimit.UserMax, c.RateLimit.Window, c.RateLimit.DefaultMax,
			map[bool]string{false: "open", true: "closed"}[c.RateLimit.FailClosed])
	}
	out := []any{
		"store", store,
		"migrations", migrations,
		"auth_state", state,
		"mailer", mailer,
		"cache", cache,
		"rate_limit", limits,
		"events", c.describeEvents(),
		"tracing", c.describeTracing(),
	}
	// Then every setting in effect, by its variable's name, in the table's order.
	for _, s := range settings {
		if v := s.show(&c); v != "" {
			out = append(out, s.name, s.secret.mask(v))
		}
	}
	return out
}
