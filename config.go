package main

import (
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
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/valkey"
)

// config is the service's whole configuration, read from the environment with the plan's
// variable names.
type config struct {
	HTTPAddr        string
	DatabaseURL     string        // PostgreSQL when set
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

	Domains []api.Domain // SERVE_DOMAINS: the domains whose routes this process serves

	// Auth state: Valkey when an address is configured, else in process (embedded mode).
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
	AdminEmail        string
	AdminName         string
	AdminPassword     string
	SMTP              mail.SMTPConfig // used when SMTP.Host is set, else reset links are logged

	CacheEnabled bool          // CACHE_ENABLED
	CacheTTL     time.Duration // REDIS_CACHE_TTL: the TTL of keys without one of their own in the plan: the list pages (5m)
	CacheMax     int           // REDIS_CACHE_MAX: entries of the in-process cache
	CacheWarm    bool          // CACHE_WARM

	// AuthStateCacheTTL (AUTH_STATE_CACHE_TTL): cap on a session or denylist entry served from
	// the Valkey client-side cache (5s); 0 reads Valkey on every request.
	AuthStateCacheTTL time.Duration

	Events eventsConfig

	RateLimitEnabled bool
	RateLimit        api.RateLimitConfig // stores are set in main
}

// configError names the variable at fault, so a bad setting stops the program with one line.
type configError struct{ name, value, why string }

func (e *configError) Error() string {
	if e.value == "" {
		return fmt.Sprintf("%s: %s", e.name, e.why)
	}
	return fmt.Sprintf("%s=%q: %s", e.name, e.value, e.why)
}

func loadConfig(getenv func(string) string, terminal bool) (config, error) {
	c := config{
		HTTPAddr:        ":8080",
		SQLitePath:      "./data/motorpool.db",
		DBConnTimeout:   5 * time.Second,
		DBConnLifetime:  time.Hour,
		DBConnIdleTime:  30 * time.Minute,
		DBQueryTimeout:  5 * time.Second,
		ShutdownTimeout: 15 * time.Second,
		LogLevel:        slog.LevelInfo,
		LogFormat:       "json",
	}
	if terminal {
		c.LogFormat = "text"
	}
	str := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	var errs []error
	dur := func(name string, dst *time.Duration) {
		v := getenv(name)
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, &configError{name, v, "must be a positive duration such as 5s or 1m"})
			return
		}
		*dst = d
	}
	conns := func(name string, dst *int32, min int64) {
		v := getenv(name)
		if v == "" {
			return
		}
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < min || n > 10000 {
			errs = append(errs, &configError{name, v, fmt.Sprintf("must be a whole number from %d to 10000", min)})
			return
		}
		*dst = int32(n)
	}

	str("HTTP_ADDR", &c.HTTPAddr)
	if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, &configError{"HTTP_ADDR", c.HTTPAddr, "must be host:port, e.g. :8080 or 127.0.0.1:8080"})
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		errs = append(errs, &configError{"HTTP_ADDR", c.HTTPAddr, "the port must be a number from 0 to 65535"})
	}
	c.Domains = api.Domains()
	if v := getenv("SERVE_DOMAINS"); v != "" {
		d, err := api.ParseDomains(v)
		if err != nil {
			errs = append(errs, &configError{"SERVE_DOMAINS", v, err.Error()})
		}
		c.Domains = d
	}
	str("SQLITE_PATH", &c.SQLitePath)
	loadDatabaseConfig(&c, getenv, &errs)
	conns("DB_MAX_CONNS", &c.DBMaxConns, 1)
	conns("DB_MIN_CONNS", &c.DBMinConns, 0)
	if c.DBMaxConns > 0 && c.DBMinConns > c.DBMaxConns {
		errs = append(errs, &configError{"DB_MIN_CONNS", getenv("DB_MIN_CONNS"), "must not exceed DB_MAX_CONNS"})
	}
	dur("DB_CONNECT_TIMEOUT", &c.DBConnTimeout)
	dur("DB_MAX_CONN_LIFETIME", &c.DBConnLifetime)
	dur("DB_MAX_CONN_IDLE_TIME", &c.DBConnIdleTime)
	dur("DB_QUERY_TIMEOUT", &c.DBQueryTimeout)
	dur("SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, &configError{"LOG_LEVEL", v, "must be debug, info, warn or error"})
		}
	}
	if v := getenv("LOG_FORMAT"); v != "" {
		if v != "json" && v != "text" {
			errs = append(errs, &configError{"LOG_FORMAT", v, "must be json or text"})
		}
		c.LogFormat = v
	}
	loadAuthConfig(&c, getenv, str, dur, &errs)
	c.CacheEnabled, c.CacheTTL, c.CacheMax = true, 5*time.Minute, 10000
	boolean := func(name string, dst *bool) {
		switch v := strings.ToLower(strings.TrimSpace(getenv(name))); v {
		case "":
		case "1", "true", "yes", "on":
			*dst = true
		case "0", "false", "no", "off":
			*dst = false
		default:
			errs = append(errs, &configError{name, v, "must be true or false"})
		}
	}
	boolean("CACHE_ENABLED", &c.CacheEnabled)
	boolean("CACHE_WARM", &c.CacheWarm)
	dur("REDIS_CACHE_TTL", &c.CacheTTL)
	c.AuthStateCacheTTL = valkey.DefaultLocalTTL
	if v := getenv("AUTH_STATE_CACHE_TTL"); v != "" {
		if d, err := time.ParseDuration(v); err != nil || d < 0 {
			errs = append(errs, &configError{"AUTH_STATE_CACHE_TTL", v, "must be 0 (no client-side cache) or a positive duration such as 5s"})
		} else {
			c.AuthStateCacheTTL = d
		}
	}
	loadRateLimitConfig(&c, getenv, boolean, dur, &errs)
	loadEventsConfig(&c, getenv, str, dur, &errs)
	checkDatabaseLayout(&c, &errs)
	if v := getenv("REDIS_CACHE_MAX"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, &configError{"REDIS_CACHE_MAX", v, "must be a positive whole number"})
		}
		c.CacheMax = n
	}
	if len(errs) > 0 {
		return config{}, errs[0]
	}
	return c, nil
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

// maskURL hides a URL's password (and any password= query parameter) for printing.
func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable, hidden)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// describe lists the effective configuration with secrets masked.
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
	orAuto := func(n int32) any {
		if n == 0 {
			return "auto"
		}
		return n
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
	return []any{
		"HTTP_ADDR", c.HTTPAddr,
		"SERVE_DOMAINS", strings.Join(c.domainNames(), ","),
		"rate_limit", limits,
		"events", c.describeEvents(),
		"cache", cache,
		"REDIS_CACHE_TTL", c.CacheTTL.String(),
		"AUTH_STATE_CACHE_TTL", c.AuthStateCacheTTL.String(),
		"CACHE_WARM", c.CacheWarm,
		"auth_state", state,
		"mailer", mailer,
		"JWT_ISSUER", c.JWTIssuer,
		"JWT_AUDIENCE", c.JWTAudience,
		"JWT_ACCESS_TTL", c.Auth.AccessTTL.String(),
		"JWT_REFRESH_TTL", c.Auth.RefreshTTL.String(),
		"SESSION_IDLE_TTL", c.Auth.SessionIdleTTL.String(),
		"SESSION_MAX_AGE", c.Auth.SessionMaxAge.String(),
		"SESSION_TOUCH_INTERVAL", c.Auth.SessionTouchInterval.String(),
		"PUBLIC_BASE_URL", c.Auth.PublicBaseURL,
		"TRUSTED_PROXIES", fmt.Sprint(c.TrustedProxies),
		"store", store,
		"migrations", migrations,
		"DB_MAX_CONNS", orAuto(c.DBMaxConns),
		"DB_MIN_CONNS", c.DBMinConns,
		"DB_CONNECT_TIMEOUT", c.DBConnTimeout.String(),
		"DB_MAX_CONN_LIFETIME", c.DBConnLifetime.String(),
		"DB_MAX_CONN_IDLE_TIME", c.DBConnIdleTime.String(),
		"DB_QUERY_TIMEOUT", c.DBQueryTimeout.String(),
		"VEHICLES_OWNER_WAIT", c.OwnerWait.String(),
		"SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String(),
		"LOG_LEVEL", c.LogLevel.String(),
		"LOG_FORMAT", c.LogFormat,
	}
}

// loadRateLimitConfig reads the RATE_LIMIT_* settings. The plan's four variables map as:
// RATE_LIMIT_TTL is the window of the global rules and of operations without a rule,
// RATE_LIMIT_MAX the limit of operations without a rule, RATE_LIMIT_IP_MAX and
// RATE_LIMIT_USER_MAX the global per-IP and per-user limits.
func loadRateLimitConfig(c *config, getenv func(string) string, boolean func(string, *bool), dur func(string, *time.Duration), errs *[]error) {
	c.RateLimitEnabled = true
	c.RateLimit = api.DefaultRateLimitConfig()
	rl := &c.RateLimit
	boolean("RATE_LIMIT_ENABLED", &c.RateLimitEnabled)
	if v := getenv("RATE_LIMIT_ALGORITHM"); v != "" {
		a, err := storage.ParseAlgorithm(v)
		if err != nil {
			*errs = append(*errs, &configError{"RATE_LIMIT_ALGORITHM", v, "must be token_bucket, sliding_window or fixed_window"})
		}
		rl.Algorithm = a
	}
	positive := func(name string, dst *int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1e9 {
				*errs = append(*errs, &configError{name, v, "must be a positive whole number"})
			}
			*dst = n
		}
	}
	positive("RATE_LIMIT_IP_MAX", &rl.IPMax)
	positive("RATE_LIMIT_USER_MAX", &rl.UserMax)
	positive("RATE_LIMIT_MAX", &rl.DefaultMax)
	positive("RATE_LIMIT_ALERT_THRESHOLD", &rl.AlertThreshold)
	dur("RATE_LIMIT_TTL", &rl.Window)
	dur("RATE_LIMIT_TIMEOUT", &rl.Timeout)
	dur("RATE_LIMIT_ALERT_WINDOW", &rl.AlertWindow)
	switch v := getenv("RATE_LIMIT_FAIL_MODE"); v {
	case "", "open":
	case "closed":
		rl.FailClosed = true
	default:
		*errs = append(*errs, &configError{"RATE_LIMIT_FAIL_MODE", v, "must be open or closed"})
	}
	if v := getenv("RATE_LIMIT_ROLE_MULTIPLIERS"); v != "" {
		m := map[storage.Role]float64{}
		for _, part := range strings.Split(v, ",") {
			name, num, ok := strings.Cut(strings.TrimSpace(part), "=")
			f, err := strconv.ParseFloat(num, 64)
			if !ok || err != nil || f <= 0 || f > 1000 || (name != "admin" && name != "user" && name != "guest") {
				*errs = append(*errs, &configError{"RATE_LIMIT_ROLE_MULTIPLIERS", v, "must be like admin=10,user=1,guest=0.5"})
				break
			}
			if name == "guest" {
				rl.GuestMult = f
			} else {
				m[storage.Role(name)] = f
			}
		}
		for r, f := range m {
			rl.Multipliers[r] = f
		}
	}
}
