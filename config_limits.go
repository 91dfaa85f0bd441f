package main

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/motorpool/motorpool/storage"
)

// The rate limits' readers whose values are not plain numbers or durations. The plan's four
// variables map as: RATE_LIMIT_TTL is the window of the global rules and of operations
// without a rule, RATE_LIMIT_MAX the limit of operations without a rule, RATE_LIMIT_IP_MAX and
// RATE_LIMIT_USER_MAX the global per-IP and per-user limits.

var rateLimitAlgorithm = reader{
	parse: func(c *config, v string) error {
		a, err := storage.ParseAlgorithm(v)
		if err != nil {
			return errors.New("must be token_bucket, sliding_window or fixed_window")
		}
		c.RateLimit.Algorithm = a
		return nil
	},
	show: func(c *config) string { return string(c.RateLimit.Algorithm) },
}

var failMode = reader{
	parse: func(c *config, v string) error {
		if v != "open" && v != "closed" {
			return errors.New("must be open or closed")
		}
		c.RateLimit.FailClosed = v == "closed"
		return nil
	},
	show: func(c *config) string {
		if c.RateLimit.FailClosed {
			return "closed"
		}
		return "open"
	},
}

// roleMultipliers reads RATE_LIMIT_ROLE_MULTIPLIERS: a role it does not name keeps its
// multiplier (api.DefaultRateLimitConfig's, which the table's default restates).
var roleMultipliers = reader{
	parse: func(c *config, v string) error {
		m, guest := map[storage.Role]float64{}, c.RateLimit.GuestMult
		for _, part := range strings.Split(v, ",") {
			name, num, ok := strings.Cut(strings.TrimSpace(part), "=")
			f, err := strconv.ParseFloat(num, 64)
			if !ok || err != nil || f <= 0 || f > 1000 || (name != "admin" && name != "user" && name != "guest") {
				return errors.New("must be like admin=10,user=1,guest=0.5")
			}
			if name == "guest" {
				guest = f
			} else {
				m[storage.Role(name)] = f
			}
		}
		if c.RateLimit.Multipliers == nil {
			c.RateLimit.Multipliers = map[storage.Role]float64{}
		}
		for r, f := range m {
			c.RateLimit.Multipliers[r] = f
		}
		c.RateLimit.GuestMult = guest
		return nil
	},
	show: func(c *config) string {
		var parts []string
		for r, f := range c.RateLimit.Multipliers {
			parts = append(parts, string(r)+"="+strconv.FormatFloat(f, 'g', -1, 64))
		}
		slices.Sort(parts)
		return strings.Join(append(parts, "guest="+strconv.FormatFloat(c.RateLimit.GuestMult, 'g', -1, 64)), ",")
	},
}
