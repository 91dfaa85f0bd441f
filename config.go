package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// config is the service's whole configuration, read from the environment with the plan's
// variable names.
type config struct {
	HTTPAddr        string
	DatabaseURL     string // PostgreSQL when set
	SQLitePath      string // used when DatabaseURL is empty
	DBMaxConns      int32
	DBMinConns      int32
	DBConnTimeout   time.Duration
	DBConnLifetime  time.Duration
	DBConnIdleTime  time.Duration
	ShutdownTimeout time.Duration
	LogLevel        slog.Level
	LogFormat       string // json or text
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
	str("SQLITE_PATH", &c.SQLitePath)
	dbURL, err := databaseURL(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	c.DatabaseURL = dbURL
	conns("DB_MAX_CONNS", &c.DBMaxConns, 1)
	conns("DB_MIN_CONNS", &c.DBMinConns, 0)
	if c.DBMaxConns > 0 && c.DBMinConns > c.DBMaxConns {
		errs = append(errs, &configError{"DB_MIN_CONNS", getenv("DB_MIN_CONNS"), "must not exceed DB_MAX_CONNS"})
	}
	dur("DB_CONNECT_TIMEOUT", &c.DBConnTimeout)
	dur("DB_MAX_CONN_LIFETIME", &c.DBConnLifetime)
	dur("DB_MAX_CONN_IDLE_TIME", &c.DBConnIdleTime)
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
	if len(errs) > 0 {
		return config{}, errs[0]
	}
	return c, nil
}

// databaseURL takes DATABASE_URL, or builds one from DB_HOST and its companions; "" means
// the embedded SQLite store.
func databaseURL(getenv func(string) string) (string, error) {
	if v := strings.TrimSpace(getenv("DATABASE_URL")); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			return "", &configError{"DATABASE_URL", maskURL(v), "must be a postgres:// URL with a host"}
		}
		return v, nil
	}
	host := strings.TrimSpace(getenv("DB_HOST"))
	if host == "" {
		for _, name := range []string{"DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"} {
			if getenv(name) != "" {
				return "", &configError{"DB_HOST", "", "must be set when " + name + " is (or set DATABASE_URL)"}
			}
		}
		return "", nil
	}
	port := "5432"
	if v := getenv("DB_PORT"); v != "" {
		if p, err := strconv.Atoi(v); err != nil || p < 1 || p > 65535 {
			return "", &configError{"DB_PORT", v, "must be a port number from 1 to 65535"}
		}
		port = v
	}
	user, name := "postgres", "motorpool"
	if v := getenv("DB_USER"); v != "" {
		user = v
	}
	if v := getenv("DB_NAME"); v != "" {
		name = v
	}
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(host, port), Path: "/" + name}
	if pw := getenv("DB_PASSWORD"); pw != "" {
		u.User = url.UserPassword(user, pw)
	} else {
		u.User = url.User(user)
	}
	return u.String(), nil
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
	if c.DatabaseURL != "" {
		store = "postgres " + maskURL(c.DatabaseURL)
	}
	orAuto := func(n int32) any {
		if n == 0 {
			return "auto"
		}
		return n
	}
	return []any{
		"HTTP_ADDR", c.HTTPAddr,
		"store", store,
		"DB_MAX_CONNS", orAuto(c.DBMaxConns),
		"DB_MIN_CONNS", c.DBMinConns,
		"DB_CONNECT_TIMEOUT", c.DBConnTimeout.String(),
		"DB_MAX_CONN_LIFETIME", c.DBConnLifetime.String(),
		"DB_MAX_CONN_IDLE_TIME", c.DBConnIdleTime.String(),
		"SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String(),
		"LOG_LEVEL", c.LogLevel.String(),
		"LOG_FORMAT", c.LogFormat,
	}
}
