package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A setting is one environment variable. The table of them (settings) is the only place a
// variable is declared: loadConfig reads the environment through it, describe prints it
// masked, and `motorpool help env`, .env.example and README.md's table are rendered from it.
type setting struct {
	name string
	// def is the default as a value of the variable, applied when it is unset; "" when the
	// variable has none (or the default is not one value, see shown).
	def string
	// shown is the default in words (markdown) when it is not one value, such as
	// "`json`, or `text` on a terminal"; def is shown when it is empty.
	shown   string
	meaning string // markdown: README.md's text
	secret  secrecy
	reader
}

// A reader fills a config field from a variable's value (the default's when it is unset) and
// shows the field back for the start-up print. parse's error says why the value is refused;
// the loader names the variable and the value.
type reader struct {
	parse func(c *config, v string) error
	show  func(c *config) string
}

// secrecy says how much of a setting's value may be printed.
type secrecy uint8

const (
	public secrecy = iota
	// secretInURL: a URL whose password (user info or a password= parameter) is masked with
	// maskURL.
	secretInURL
	// secret: never printed, nor trimmed (spaces may belong to a password).
	secret
)

// mask is v as it may be printed.
func (s secrecy) mask(v string) string {
	switch {
	case v == "" || s == public:
		return v
	case s == secretInURL:
		return maskURL(v)
	default:
		return "xxxxx"
	}
}

// lookup is the setting named name, if the table has it.
func lookup(name string) (setting, bool) {
	for _, s := range settings {
		if s.name == name {
			return s, true
		}
	}
	return setting{}, false
}

// readSettings applies every setting of the table to c, each from the environment or else
// its default. Values are trimmed, secrets' excepted. It returns the names set to other
// than their default (the checks between variables ask about those, so that a file setting
// every default, such as .env.example, changes nothing) and an error per refused value.
func readSettings(c *config, getenv func(string) string) (map[string]bool, configErrors) {
	given := map[string]bool{}
	var errs configErrors
	for _, s := range settings {
		v := getenv(s.name)
		if s.secret != secret {
			v = strings.TrimSpace(v)
		}
		if v != "" && v != s.def {
			given[s.name] = true
		}
		if v == "" {
			v = s.def
		}
		if v == "" {
			continue
		}
		if err := s.parse(c, v); err != nil {
			shown := s.secret.mask(v)
			if s.secret == secret {
				shown = ""
			}
			errs = append(errs, &configError{s.name, shown, err.Error()})
		}
	}
	return given, errs
}

// The readers of the usual kinds of value. Each takes the field it fills.

func text(f func(*config) *string) reader {
	return reader{
		parse: func(c *config, v string) error { *f(c) = v; return nil },
		show:  func(c *config) string { return *f(c) },
	}
}

// duration reads a positive duration.
func duration(f func(*config) *time.Duration) reader {
	return durationIn(f, time.Nanosecond, 0, "must be a positive duration such as 5s or 1m")
}

// durationIn reads a duration from min up to max (no bound when 0), refused with why.
func durationIn(f func(*config) *time.Duration, min, max time.Duration, why string) reader {
	return reader{
		parse: func(c *config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < min || (max > 0 && d > max) {
				return errors.New(why)
			}
			*f(c) = d
			return nil
		},
		show: func(c *config) string { return shortDuration(*f(c)) },
	}
}

// shortDuration is d as the table writes durations: 1h, not 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func boolean(f func(*config) *bool) reader {
	return reader{
		parse: func(c *config, v string) error {
			switch strings.ToLower(v) {
			case "1", "true", "yes", "on":
				*f(c) = true
			case "0", "false", "no", "off":
				*f(c) = false
			default:
				return errors.New("must be true or false")
			}
			return nil
		},
		show: func(c *config) string { return strconv.FormatBool(*f(c)) },
	}
}

// whole reads a whole number from min to max, refused with why.
func whole(f func(*config) *int, min, max int, why string) reader {
	return reader{
		parse: func(c *config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < min || n > max {
				return errors.New(why)
			}
			*f(c) = n
			return nil
		},
		show: func(c *config) string { return strconv.Itoa(*f(c)) },
	}
}

// positive reads a whole number from 1 to a billion.
func positive(f func(*config) *int) reader {
	return whole(f, 1, 1e9, "must be a positive whole number")
}

// conns reads a pool size from min to 10000; with min 1, the unset 0 shows as auto (the
// driver's choice).
func conns(f func(*config) *int32, min int64) reader {
	return reader{
		parse: func(c *config, v string) error {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < min || n > 10000 {
				return fmt.Errorf("must be a whole number from %d to 10000", min)
			}
			*f(c) = int32(n)
			return nil
		},
		show: func(c *config) string {
			if *f(c) == 0 && min > 0 {
				return "auto"
			}
			return strconv.Itoa(int(*f(c)))
		},
	}
}

// port reads a TCP port number, kept as text for net.JoinHostPort.
func port(f func(*config) *string) reader {
	return reader{
		parse: func(c *config, v string) error {
			if p, err := strconv.Atoi(v); err != nil || p < 1 || p > 65535 {
				return errors.New("must be a port number from 1 to 65535")
			}
			*f(c) = v
			return nil
		},
		show: func(c *config) string { return *f(c) },
	}
}

// list reads comma-separated items, dropping empty ones.
func list(f func(*config) *[]string) reader {
	return reader{
		parse: func(c *config, v string) error {
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					*f(c) = append(*f(c), item)
				}
			}
			return nil
		},
		show: func(c *config) string { return strings.Join(*f(c), ",") },
	}
}

// oneOf reads one of the words, refused with why.
func oneOf(f func(*config) *string, why string, words ...string) reader {
	return reader{
		parse: func(c *config, v string) error {
			for _, w := range words {
				if v == w {
					*f(c) = v
					return nil
				}
			}
			return errors.New(why)
		},
		show: func(c *config) string { return *f(c) },
	}
}
