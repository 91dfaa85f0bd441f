package browsertest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium. Without it the test cannot run: with CI set that is
// a failure (CI must install it; .ci/run does), elsewhere a skip that says what to install.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	const why = "chromium not found (neither /usr/bin/chromium nor chromium on PATH): apt-get install -y chromium"
	if os.Getenv("CI") != "" {
		t.Fatal(why + " (CI is set, so this fails instead of skipping)")
	}
	t.Skip(why)
	return ""
}

// browser is one tab of a headless Chromium and what the test needs to report a failure.
type browser struct {
	t        *testing.T
	tab      context.Context // lives until the test ends, past deadline, so a failure can still be photographed
	budget   time.Duration   // for all the steps together
	deadline time.Time       // now + budget, when the browser started
	logs     []string        // files copied beside the screenshot when a step fails
	steps    int
}

// Per step, within the overall deadline: long enough for a slow shared machine, short
// enough that a selector which never matches fails in reasonable time and names its step.
const stepTimeout = 30 * time.Second

// newBrowser starts Chromium with a fresh profile under dir. The flags suit a root user on
// a machine without network: no sandbox (it refuses to run as root otherwise), no GPU, and
// nothing that phones home (QUIC, component updates, sync, background fetches), so the
// only requests it makes are the test's. budget bounds every step together.
func newBrowser(t *testing.T, dir string, budget time.Duration, logs ...string) *browser {
	t.Helper()
	exe := chromiumPath(t)
	profile := filepath.Join(dir, "chromium-profile")
	chromeLog := filepath.Join(dir, "chromium.log")
	out, err := os.Create(chromeLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Containers often give /dev/shm only 64 MB, where renderers crash.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1024),
		chromedp.CombinedOutput(out),
	)
	// chromedp's own complaints (events it cannot decode, say) go to the browser's log, not
	// to t.Logf, which must not be called once the test has returned.
	logf := func(format string, args ...any) { fmt.Fprintf(out, "chromedp: "+format+"\n", args...) }
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	t.Cleanup(func() {
		// Close the browser (and wait for it) before t.TempDir removes its profile.
		cancelTab()
		cancelAlloc()
	})

	b := &browser{t: t, tab: tab, budget: budget, deadline: time.Now().Add(budget), logs: append(logs, chromeLog)}
	// The first Do starts the browser and binds its life to tab, which has no deadline:
	// the steps run under children of tab, so a step that times out leaves the page there
	// to be photographed. The start itself is bounded by waiting for it in the step.
	b.step("start chromium", func(ctx context.Context) error {
		started := make(chan error, 1)
		go func() { started <- chromedp.Do(tab) }()
		select {
		case err := <-started:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return b
}

// step runs one user-visible step, bounded by stepTimeout and the overall deadline. When it
// fails, the test fails naming the step, after saving the page as it stands.
func (b *browser) step(name string, f func(ctx context.Context) error) {
	b.t.Helper()
	b.steps++
	ctx, cancel := context.WithDeadline(b.tab, b.deadline)
	defer cancel()
	ctx, cancelStep := context.WithTimeout(ctx, stepTimeout)
	defer cancelStep()
	err := f(ctx)
	if err == nil {
		return
	}
	if ctx.Err() != nil {
		if time.Now().Before(b.deadline) {
			err = fmt.Errorf("%w (the step took more than %s)", err, stepTimeout)
		} else {
			err = fmt.Errorf("%w (the browser steps together took more than %s)", err, b.budget)
		}
	}
	where := b.saveArtifacts(fmt.Sprintf("%02d-%s", b.steps, slug(name)))
	b.t.Fatalf("step %q failed: %v\n%s", name, err, where)
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

func slug(s string) string {
	return strings.Trim(nonWord.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// artifactsDir is $ARTIFACTS_DIR when set (CI keeps it), else a browsertest-artifacts
// directory under the system's temporary directory, which outlives the test, unlike
// t.TempDir.
func artifactsDir() (string, error) {
	if d := os.Getenv("ARTIFACTS_DIR"); d != "" {
		return d, os.MkdirAll(d, 0o755)
	}
	root := filepath.Join(os.TempDir(), "browsertest-artifacts")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(root, time.Now().Format("20060102-150405-"))
}

// saveArtifacts writes a full-page screenshot, the page's HTML and the logs of the server
// and the browser, and says where they are.
func (b *browser) saveArtifacts(prefix string) string {
	dir, err := artifactsDir()
	if err != nil {
		return fmt.Sprintf("no artifacts saved: %v", err)
	}
	// The step's context may be spent; the tab is not.
	ctx, cancel := context.WithTimeout(b.tab, 15*time.Second)
	defer cancel()
	var problems []string
	// JPEG (any quality below 100): a full page of Swagger UI as PNG runs to megabytes.
	if jpg, err := chromedp.Run(ctx, chromedp.FullScreenshot(80)); err != nil {
		problems = append(problems, "screenshot: "+err.Error())
	} else if err := os.WriteFile(filepath.Join(dir, prefix+".jpg"), jpg, 0o644); err != nil {
		problems = append(problems, err.Error())
	}
	if html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))); err != nil {
		problems = append(problems, "page HTML: "+err.Error())
	} else if err := os.WriteFile(filepath.Join(dir, prefix+".html"), []byte(html), 0o644); err != nil {
		problems = append(problems, err.Error())
	}
	for _, l := range b.logs {
		if data, err := os.ReadFile(l); err == nil {
			os.WriteFile(filepath.Join(dir, prefix+"-"+filepath.Base(l)), data, 0o644)
		}
	}
	b.t.Logf("browsertest artifacts (screenshot, page HTML, logs): %s", dir)
	msg := "artifacts in " + dir
	if len(problems) > 0 {
		msg += " (incomplete: " + strings.Join(problems, "; ") + ")"
	}
	return msg
}
