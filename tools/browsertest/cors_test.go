package browsertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// page is a web app on an origin of its own that calls two motorpools with fetch: api, which
// lists the page's origin in CORS_ALLOWED_ORIGINS, and closed, which has no CORS setting.
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>another origin</title></head>
<body><pre id="out"></pre>
<script>
const q = new URLSearchParams(location.search);
const api = q.get("api"), closed = q.get("closed"), email = q.get("email"), password = q.get("password");
const json = (body) => ({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
async function run() {
  const out = {};
  let r = await fetch(api + "/users", json({ email, name: "Page User", password }));
  out.register = r.status;
  out.location = r.headers.get("Location");
  r = await fetch(api + "/auth/login", json({ email, password }));
  out.login = r.status;
  const token = (await r.json()).accessToken;
  const auth = { headers: { Authorization: "Bearer " + token } };
  r = await fetch(api + "/auth/me", auth);
  out.me = r.status;
  out.meEmail = (await r.json()).user.email;
  out.requestId = r.headers.get("X-Request-Id");
  out.remaining = r.headers.get("X-RateLimit-Remaining");
  out.policy = r.headers.get("RateLimit-Policy");
  r = await fetch(api + "/vehicles/999999", auth);
  out.missing = r.status;
  out.missingType = r.headers.get("Content-Type");
  out.missingDetail = (await r.json()).detail;
  try {
    await fetch(closed + "/auth/me", auth);
    out.closed = "read";
  } catch (e) {
    out.closed = "blocked";
  }
  return out;
}
run().then((out) => { document.getElementById("out").textContent = JSON.stringify(out); },
           (err) => { document.getElementById("out").textContent = JSON.stringify({ error: String(err) }); })
  .finally(() => document.body.insertAdjacentHTML("beforeend", '<p id="done">done</p>'));
</script></body></html>`

// TestCallFromAnotherOrigin: a page on another origin signs in and reads the API with fetch,
// sending its bearer token (so the browser preflights), and reads the headers a client
// needs and a problem+json body; the same call to a motorpool without CORS_ALLOWED_ORIGINS
// is blocked by the browser.
func TestCallFromAnotherOrigin(t *testing.T) {
	chromiumPath(t)
	dir := t.TempDir()
	bin := buildMotorpool(t, dir)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(site.Close)
	api, apiLog := startMotorpool(t, bin, filepath.Join(dir, "open"), "CORS_ALLOWED_ORIGINS="+site.URL)
	closed, closedLog := startMotorpool(t, bin, filepath.Join(dir, "closed"))
	b := newBrowser(t, dir, 60*time.Second, apiLog, closedLog)

	email := fmt.Sprintf("origin-%d@example.com", time.Now().UnixNano())
	var out struct {
		Register, Login, Me, Missing                    int
		Location, MeEmail, RequestID, Remaining, Policy string
		MissingType, MissingDetail, Closed, Error       string
	}
	b.step("run the page on "+site.URL, func(ctx context.Context) error {
		u := fmt.Sprintf("%s/?api=%s&closed=%s&email=%s&password=%s", site.URL, api, closed, email, "correct horse battery")
		if err := chromedp.Do(ctx, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS("#done"))); err != nil {
			return err
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#out")))
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(text), &out); err != nil {
			return fmt.Errorf("the page wrote %q: %w", text, err)
		}
		if out.Error != "" {
			return fmt.Errorf("the page's script failed: %s", out.Error)
		}
		return nil
	})
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"POST /users status", out.Register, 201},
		{"POST /users Location (exposed)", out.Location != "", true},
		{"POST /auth/login status", out.Login, 200},
		{"GET /auth/me status", out.Me, 200},
		{"GET /auth/me email", out.MeEmail, email},
		{"X-Request-Id (exposed)", out.RequestID != "", true},
		{"X-RateLimit-Remaining (exposed)", out.Remaining != "", true},
		{"RateLimit-Policy (exposed)", out.Policy != "", true},
		{"GET /vehicles/999999 status", out.Missing, 404},
		{"its Content-Type", out.MissingType, "application/problem+json"},
		{"its detail", out.MissingDetail != "", true},
		{"the same call to a motorpool without CORS", out.Closed, "blocked"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	if t.Failed() {
		t.Log(b.saveArtifacts("cors"))
	}
}
