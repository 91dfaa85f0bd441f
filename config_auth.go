package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/mail"
)

// redisParts are REDIS_HOST and its companions, the Valkey address in parts.
type redisParts struct{ Host, Port, Password string }

// valkeyURL reads VALKEY_URL into the Valkey fields.
var valkeyURL = reader{
	parse: func(c *config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "valkey" && u.Scheme != "valkeys") || u.Host == "" {
			return errors.New("must be a redis://, rediss://, valkey:// or valkeys:// URL with a host")
		}
		db := 0
		if p := strings.Trim(u.Path, "/"); p != "" {
			if db, err = strconv.Atoi(p); err != nil || db < 0 || db > 15 {
				return errors.New("the path must be a database number from 0 to 15")
			}
		}
		c.ValkeyURL, c.ValkeyAddr, c.ValkeyDB = v, u.Host, db
		if u.Port() == "" {
			c.ValkeyAddr = net.JoinHostPort(u.Hostname(), "6379")
		}
		c.ValkeyUser = u.User.Username()
		c.ValkeyPassword, _ = u.User.Password()
		c.ValkeyTLS = u.Scheme == "rediss" || u.Scheme == "valkeys"
		return nil
	},
	show: func(c *config) string { return c.ValkeyURL },
}

// keyPrefix reads VALKEY_KEY_PREFIX.
var keyPrefix = reader{
	parse: func(c *config, v string) error {
		if strings.ContainsAny(v, "{}") {
			return errors.New("must not contain braces (they are cluster hash tags)")
		}
		c.ValkeyPrefix = v
		return nil
	},
	show: func(c *config) string { return c.ValkeyPrefix },
}

// publicBaseURL reads PUBLIC_BASE_URL, where reset links point.
var publicBaseURL = reader{
	parse: func(c *config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("must be an http:// or https:// URL")
		}
		c.Auth.PublicBaseURL = v
		return nil
	},
	show: func(c *config) string { return c.Auth.PublicBaseURL },
}

// trustedProxies reads TRUSTED_PROXIES: CIDRs, or addresses standing for themselves alone.
var trustedProxies = reader{
	parse: func(c *config, v string) error {
		var prefixes []netip.Prefix
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			pre, err := netip.ParsePrefix(p)
			if err != nil {
				a, aerr := netip.ParseAddr(p)
				if aerr != nil {
					return fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", p)
				}
				pre = netip.PrefixFrom(a, a.BitLen())
			}
			prefixes = append(prefixes, pre.Masked())
		}
		c.TrustedProxies = prefixes
		return nil
	},
	show: func(c *config) string {
		s := make([]string, len(c.TrustedProxies))
		for i, p := range c.TrustedProxies {
			s[i] = p.String()
		}
		return strings.Join(s, ",")
	},
}

// corsOrigins reads CORS_ALLOWED_ORIGINS with the API's own check of an origin.
var corsOrigins = reader{
	parse: func(c *config, v string) error {
		o, err := api.ParseCORSOrigins(v)
		c.CORSAllowedOrigins = o
		return err
	},
	show: func(c *config) string { return strings.Join(c.CORSAllowedOrigins, ",") },
}

// validated reads a value that must pass the API's own check of schema as: what the API
// refuses would otherwise reach the store unchecked.
func validated(f func(*config) *string, as string) reader {
	return reader{
		parse: func(c *config, v string) error {
			if err := api.ValidateAs(as, v); err != nil {
				return err
			}
			*f(c) = v
			return nil
		},
		show: func(c *config) string { return *f(c) },
	}
}

// adminPassword reads ADMIN_PASSWORD, as long as the API requires.
var adminPassword = reader{
	parse: func(c *config, v string) error {
		if n := utf8.RuneCountInString(v); n < 12 || n > 256 {
			return errors.New("must be 12 to 256 characters")
		}
		c.AdminPassword = v
		return nil
	},
	show: func(c *config) string { return c.AdminPassword },
}

// checkAuth settles the Valkey address (VALKEY_URL, or REDIS_HOST and its companions) and
// checks what the authentication, admin and mail settings need of each other. given holds
// the variables set to other than their default.
func checkAuth(c *config, given map[string]bool, errs *configErrors) {
	switch {
	case given["VALKEY_URL"]:
	case c.RedisParts.Host != "":
		c.ValkeyAddr = net.JoinHostPort(c.RedisParts.Host, c.RedisParts.Port)
		c.ValkeyPassword = c.RedisParts.Password
	case given["REDIS_PORT"] || given["REDIS_PASSWORD"]:
		*errs = append(*errs, &configError{"REDIS_HOST", "", "must be set when REDIS_PORT or REDIS_PASSWORD is (or set VALKEY_URL)"})
	}
	switch {
	case c.ValkeyAddr == "" && !c.serves(api.DomainUsers, api.DomainVehicles):
		// Sessions live in Valkey; in process, the other domain's process could not see them.
		*errs = append(*errs, &configError{"SERVE_DOMAINS", strings.Join(c.domainNames(), ","), "serving one domain needs Valkey (VALKEY_URL or REDIS_HOST): the processes of the domains share the sessions there"})
	case c.ValkeyAddr != "" && c.JWTPrivateKeyFile == "" && c.serves(api.DomainUsers):
		*errs = append(*errs, &configError{"JWT_PRIVATE_KEY_FILE", "", "must be set when Valkey is configured: every instance must sign with the same key"})
	case c.ValkeyAddr != "" && c.JWTPrivateKeyFile == "" && len(c.JWTPublicKeyFiles) == 0:
		*errs = append(*errs, &configError{"JWT_PRIVATE_KEY_FILE", "", "must be set, or JWT_PUBLIC_KEY_FILES, when Valkey is configured: a process serving only vehicles verifies the tokens of the users process with those keys"})
	}
	if c.AdminEmail != "" && c.AdminPassword == "" {
		*errs = append(*errs, &configError{"ADMIN_PASSWORD", "", "must be set when ADMIN_EMAIL is"})
	}
	if c.SMTP.Host != "" {
		if _, err := mail.NewSMTPMailer(c.SMTP); err != nil {
			*errs = append(*errs, &configError{"SMTP_FROM", c.SMTP.From, err.Error()})
		}
	}
}
