package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
)

// A layer of the request path and the frames that are its own work. A sample counts for the
// first layer (in this order) that has a frame anywhere on its stack, so the JSON that jwx
// decodes is JWT verification's, and the allocation a handler makes is the handler's. The
// middleware closures that only call the next handler are nobody's: they wrap everything.
var layers = []struct {
	name  string
	match func(frame string) bool
}{
	{"JWT verify (jwx, Ed25519)", prefixes("github.com/motorpool/motorpool/token.", "github.com/lestrrat-go/jwx/")},
	{"session check (auth, its Valkey reads or their client-side cache)", prefixes(
		"github.com/motorpool/motorpool/auth.", "github.com/motorpool/motorpool/storage/valkey.(*AuthState)",
		"github.com/motorpool/motorpool/storage/memory.")},
	{"limiter (rules, headers, own store call)", func(f string) bool {
		return (strings.HasPrefix(f, "github.com/motorpool/motorpool/api.(*rateLimiter).") && !strings.Contains(f, ".middleware")) ||
			strings.HasPrefix(f, "github.com/motorpool/motorpool/storage/valkey.(*Limiter)")
	}},
	{"validation (kin-openapi)", prefixes("github.com/getkin/kin-openapi/openapi3filter.", "github.com/getkin/kin-openapi/openapi3.")},
	{"routing (route lookups, path parameters)", func(f string) bool {
		return prefixes("github.com/getkin/kin-openapi/routers", "github.com/gorilla/mux.")(f) ||
			(strings.HasPrefix(f, "net/http.(*ServeMux).") && !strings.HasSuffix(f, ".ServeHTTP")) ||
			strings.HasPrefix(f, "net/http.(*routingNode)") || strings.HasPrefix(f, "net/http.(*pattern)")
	}},
	{"logging (slog)", prefixes("log/slog.")},
	{"metrics (Prometheus)", prefixes("github.com/prometheus/")},
	{"handler and cache (impl, strict server)", prefixes("github.com/motorpool/motorpool/impl.",
		"github.com/motorpool/motorpool/gen.(*strictHandler)", "github.com/motorpool/motorpool/storage/valkey.(*Cache)")},
	{"database (pgx, SQLite)", prefixes("github.com/jackc/", "modernc.org/", "github.com/motorpool/motorpool/storage/postgres.",
		"github.com/motorpool/motorpool/storage/sqlite.")},
	{"JSON (encoding/json elsewhere)", prefixes("encoding/json.")},
	{"Valkey client I/O (valkey-go's pipes)", prefixes("github.com/valkey-io/valkey-go")},
	{"other motorpool/api (middleware, headers, problem+json)", prefixes("github.com/motorpool/motorpool/api.",
		"github.com/motorpool/motorpool/gen.")},
	{"net/http and the kernel's network (parsing, reads, writes)", prefixes("net/http.", "net.", "net/textproto.",
		"bufio.", "internal/poll.", "syscall.", "internal/runtime/syscall")},
}

const runtimeLayer = "Go runtime (GC, scheduler, allocation not under any layer)"

func prefixes(ps ...string) func(string) bool {
	return func(f string) bool {
		for _, p := range ps {
			if strings.HasPrefix(f, p) {
				return true
			}
		}
		return false
	}
}

// classify names the layer of one sample from its frames (leaf first).
func classify(frames []string) string {
	for _, l := range layers {
		if slices.ContainsFunc(frames, l.match) {
			return l.name
		}
	}
	return runtimeLayer
}

// layerShares reads `perf script -F ip,sym` output (frames one per line, samples separated
// by blank lines) and counts the samples of each layer.
func layerShares(r io.Reader) (map[string]int, int, error) {
	counts := map[string]int{}
	total := 0
	var frames []string
	flush := func() {
		if len(frames) > 0 {
			counts[classify(frames)]++
			total++
			frames = frames[:0]
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			flush()
			continue
		}
		if _, sym, ok := strings.Cut(line, " "); ok {
			frames = append(frames, strings.TrimSpace(sym))
		}
	}
	flush()
	return counts, total, sc.Err()
}

// writeLayers prints the share of the server's CPU samples each layer took, largest first.
func writeLayers(w io.Writer, counts map[string]int, total int) {
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return counts[b] - counts[a] })
	fmt.Fprintf(w, "| layer | share of the server's CPU (%d samples) |\n|---|---:|\n", total)
	for _, n := range names {
		fmt.Fprintf(w, "| %s | %.1f%% |\n", n, 100*float64(counts[n])/float64(total))
	}
}

// profileLayers runs perf script on a recorded profile and prints the layers' shares.
func profileLayers(ctx context.Context, w io.Writer, data string) error {
	cmd := exec.CommandContext(ctx, "perf", "script", "-i", data, "-F", "ip,sym")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("perf script: %w", err)
	}
	counts, total, err := layerShares(out)
	if werr := cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("perf script: %w", werr)
	}
	if err != nil {
		return err
	}
	if total == 0 {
		return fmt.Errorf("perf script: no samples in %s", data)
	}
	writeLayers(w, counts, total)
	return nil
}
