// Package browsertest holds the test that uses the Swagger UI at /docs/ as a new user would,
// in a real headless Chromium driven by chromedp: register, sign in, paste the token into
// Authorize with its "Bearer " prefix (the common mistake that api/spec.go's
// requestInterceptor repairs), then call an authenticated read and write. It builds the
// server from the repository checkout and starts it on a loopback port with its embedded
// SQLite store, so it needs no services; it needs Chromium (Debian's chromium package).
//
// It lives in the tools module so that chromedp stays out of the service's go.mod.
package browsertest
