package api

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

// The client address comes from the peer unless the peer is a trusted proxy; then
// X-Forwarded-For is walked from the right past trusted hops, so a client cannot forge the
// address by sending its own header through a proxy that appends.
func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	cases := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"direct client", "203.0.113.7:5555", nil, "203.0.113.7"},
		{"direct client lying", "203.0.113.7:5555", []string{"198.51.100.1"}, "203.0.113.7"},
		{"behind one proxy", "10.0.0.2:443", []string{"203.0.113.7"}, "203.0.113.7"},
		{"forged left entry", "10.0.0.2:443", []string{"1.2.3.4, 203.0.113.7"}, "203.0.113.7"},
		{"two trusted hops", "10.0.0.2:443", []string{"203.0.113.7, 10.0.0.9"}, "203.0.113.7"},
		{"several headers", "10.0.0.2:443", []string{"1.2.3.4", "203.0.113.7"}, "203.0.113.7"},
		{"all trusted", "10.0.0.2:443", []string{"10.1.1.1"}, "10.1.1.1"},
		{"garbage hop", "10.0.0.2:443", []string{"203.0.113.7, not-an-ip"}, "10.0.0.2"},
		{"proxy without header", "10.0.0.2:443", nil, "10.0.0.2"},
		{"IPv6 proxy", "[2001:db8::1]:443", []string{"2001:db8:1::5, 2001:db8::2"}, "2001:db8:1::5"},
		{"IPv4-mapped peer", "[::ffff:203.0.113.7]:80", nil, "203.0.113.7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.remote
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, trusted); got != c.want {
				t.Errorf("clientIP = %s, want %s", got, c.want)
			}
		})
	}
}
