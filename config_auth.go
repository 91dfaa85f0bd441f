package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/mail"
)

// loadAuthConfig reads the authentication, session and Valkey settings.
func loadAuthConfig(c *config, getenv func(string) string, str func(string, *string), dur func(string, *time.Duration), errs *[]error) {
	c.Auth = auth.DefaultConfig()
	c.DataDir = "./data"
	c.JWTIssuer, c.JWTAudience = "motorpool", "motorpool-api"
	c.AdminName = "Administrator"

	if v := strings.TrimSpace(getenv("VALKEY_URL")); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "valkey" && u.Scheme != "valkeys") || u.Host == "" {
			*errs = append(*errs, &configError{"VALKEY_URL", maskURL(v), "must be a redis://, rediss://, valkey:// or valkeys:// URL with a host"})
		} else {
			c.ValkeyAddr = u.Host
			if u.Port() == "" {
				c.ValkeyAddr = net.JoinHostPort(u.Hostname(), "6379")
			}
			c.ValkeyUser = u.User.Username()
			c.ValkeyPassword, _ = u.User.Password()
			c.ValkeyTLS = u.Scheme == "rediss" || u.Scheme == "valkeys"
			if db := strings.Trim(u.Path, "/"); db != "" {
				n, err := strconv.Atoi(db)
				if err != nil || n < 0 || n > 15 {
					*errs = append(*errs, &configError{"VALKEY_URL", maskURL(v), "the path must be a database number from 0 to 15"})
				}
				c.ValkeyDB = n
			}
		}
	} else if host := strings.TrimSpace(getenv("REDIS_HOST")); host != "" {
		port := "6379"
		if v := getenv("REDIS_PORT"); v != "" {
			if p, err := strconv.Atoi(v); err != nil || p < 1 || p > 65535 {
				*errs = append(*errs, &configError{"REDIS_PORT", v, "must be a port number from 1 to 65535"})
			}
			port = v
		}
		c.ValkeyAddr = net.JoinHostPort(host, port)
		c.ValkeyPassword = getenv("REDIS_PASSWORD")
	} else if getenv("REDIS_PORT") != "" || getenv("REDIS_PASSWORD") != "" {
		*errs = append(*errs, &configError{"REDIS_HOST", "", "must be set when REDIS_PORT or REDIS_PASSWORD is (or set VALKEY_URL)"})
	}
	str("VALKEY_KEY_PREFIX", &c.ValkeyPrefix)
	if strings.ContainsAny(c.ValkeyPrefix, "{}") {
		*errs = append(*errs, &configError{"VALKEY_KEY_PREFIX", c.ValkeyPrefix, "must not contain braces (they are cluster hash tags)"})
	}

	str("DATA_DIR", &c.DataDir)
	str("JWT_PRIVATE_KEY_FILE", &c.JWTPrivateKeyFile)
	if v := strings.TrimSpace(getenv("JWT_PUBLIC_KEY_FILES")); v != "" {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				c.JWTPublicKeyFiles = append(c.JWTPublicKeyFiles, f)
			}
		}
	}
	switch {
	case c.ValkeyAddr == "" && !c.serves(api.DomainUsers, api.DomainVehicles):
		// Sessions live in Valkey; in process, the other domain's process could not see them.
		*errs = append(*errs, &configError{"SERVE_DOMAINS", getenv("SERVE_DOMAINS"), "serving one domain needs Valkey (VALKEY_URL or REDIS_HOST): the processes of the domains share the sessions there"})
	case c.ValkeyAddr != "" && c.JWTPrivateKeyFile == "" && c.serves(api.DomainUsers):
		*errs = append(*errs, &configError{"JWT_PRIVATE_KEY_FILE", "", "must be set when Valkey is configured: every instance must sign with the same key"})
	case c.ValkeyAddr != "" && c.JWTPrivateKeyFile == "" && len(c.JWTPublicKeyFiles) == 0:
		*errs = append(*errs, &configError{"JWT_PRIVATE_KEY_FILE", "", "must be set, or JWT_PUBLIC_KEY_FILES, when Valkey is configured: a process serving only vehicles verifies the tokens of the users process with those keys"})
	}
	str("JWT_ISSUER", &c.JWTIssuer)
	str("JWT_AUDIENCE", &c.JWTAudience)
	dur("JWT_ACCESS_TTL", &c.Auth.AccessTTL)
	dur("JWT_REFRESH_TTL", &c.Auth.RefreshTTL)
	dur("JWT_CLOCK_SKEW", &c.Auth.Skew)
	dur("SESSION_IDLE_TTL", &c.Auth.SessionIdleTTL)
	dur("SESSION_MAX_AGE", &c.Auth.SessionMaxAge)
	dur("SESSION_TOUCH_INTERVAL", &c.Auth.SessionTouchInterval)
	// 0 turns the grace off (RFC 9700's strict reuse detection): any replay ends the session.
	if v := getenv("REFRESH_REUSE_GRACE"); v != "" {
		if d, err := time.ParseDuration(v); err != nil || d < 0 {
			*errs = append(*errs, &configError{"REFRESH_REUSE_GRACE", v, "must be 0 (no grace) or a positive duration such as 10s"})
		} else {
			c.Auth.RefreshGrace = d
		}
	}
	dur("LOGIN_LOCKOUT_WINDOW", &c.Auth.LockoutWindow)
	dur("PASSWORD_RESET_TTL", &c.Auth.ResetTTL)
	dur("AUTH_STATE_TIMEOUT", &c.Auth.StateTimeout)
	if v := getenv("LOGIN_MAX_FAILURES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			*errs = append(*errs, &configError{"LOGIN_MAX_FAILURES", v, "must be a whole number from 1 to 1000"})
		}
		c.Auth.MaxLoginFailures = n
	}
	if v := strings.TrimSpace(getenv("PUBLIC_BASE_URL")); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			*errs = append(*errs, &configError{"PUBLIC_BASE_URL", v, "must be an http:// or https:// URL"})
		}
		c.Auth.PublicBaseURL = v
	}
	if v := strings.TrimSpace(getenv("TRUSTED_PROXIES")); v != "" {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			pre, err := netip.ParsePrefix(p)
			if err != nil {
				a, aerr := netip.ParseAddr(p)
				if aerr != nil {
					*errs = append(*errs, &configError{"TRUSTED_PROXIES", v, fmt.Sprintf("%q is not a CIDR such as 10.0.0.0/8", p)})
					continue
				}
				pre = netip.PrefixFrom(a, a.BitLen())
			}
			c.TrustedProxies = append(c.TrustedProxies, pre.Masked())
		}
	}
	str("ADMIN_EMAIL", &c.AdminEmail)
	str("ADMIN_NAME", &c.AdminName)
	c.AdminPassword = getenv("ADMIN_PASSWORD")
	if c.AdminEmail != "" {
		if err := api.ValidateAs("Email", c.AdminEmail); err != nil {
			*errs = append(*errs, &configError{"ADMIN_EMAIL", c.AdminEmail, err.Error()})
		}
	}
	if err := api.ValidateAs("Name", c.AdminName); err != nil {
		*errs = append(*errs, &configError{"ADMIN_NAME", c.AdminName, err.Error()})
	}
	if c.AdminEmail != "" && c.AdminPassword == "" {
		*errs = append(*errs, &configError{"ADMIN_PASSWORD", "", "must be set when ADMIN_EMAIL is"})
	} else if c.AdminPassword != "" && (utf8.RuneCountInString(c.AdminPassword) < 12 || utf8.RuneCountInString(c.AdminPassword) > 256) {
		*errs = append(*errs, &configError{"ADMIN_PASSWORD", "", "must be 12 to 256 characters"})
	}

	str("SMTP_HOST", &c.SMTP.Host)
	str("SMTP_USERNAME", &c.SMTP.Username)
	c.SMTP.Password = getenv("SMTP_PASSWORD")
	str("SMTP_FROM", &c.SMTP.From)
	str("SMTP_TLS", &c.SMTP.TLS)
	if v := getenv("SMTP_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			*errs = append(*errs, &configError{"SMTP_PORT", v, "must be a port number from 1 to 65535"})
		}
		c.SMTP.Port = p
	}
	if c.SMTP.Host != "" {
		if _, err := mail.NewSMTPMailer(c.SMTP); err != nil {
			*errs = append(*errs, &configError{"SMTP_FROM", c.SMTP.From, err.Error()})
		}
	}
}
