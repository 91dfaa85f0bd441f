package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// report holds every round's results: rounds[r][s] is scenario names[s] in round r.
type report struct {
	names  []string
	floor  int // index of the floor among names
	rounds [][]result
}

// ratio is scenario s's throughput over the floor's in round r.
func (rp report) ratio(r, s int) float64 {
	f := rp.rounds[r][rp.floor].RPS
	if f == 0 {
		return 0
	}
	return rp.rounds[r][s].RPS / f
}

// medianOf is the median over rounds of f(round).
func (rp report) medianOf(f func(r int) float64) float64 {
	xs := make([]float64, len(rp.rounds))
	for r := range rp.rounds {
		xs[r] = f(r)
	}
	return median(xs)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// hitShare says how many answers the cache served, where it was counted.
func (r result) hitShare() string {
	if r.Hits < 0 || r.Requests == 0 {
		return ""
	}
	return fmt.Sprintf(", X-Cache: hit on %.1f%%", 100*float64(r.Hits)/float64(r.Requests))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func msf(x float64) string { return ms(time.Duration(x)) }

// write prints the per-round table, then the medians; the ratio to the floor is taken in each
// round (the machine drifts between rounds) and its median reported.
func (rp report) write(w io.Writer) {
	fmt.Fprintln(w, "| round | scenario | req/s | p50 ms | p99 ms | errors | × floor |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|")
	for r, row := range rp.rounds {
		for s, res := range row {
			fmt.Fprintf(w, "| %d | %s | %.0f | %s | %s | %d | %.3f |\n", r+1, rp.names[s], res.RPS,
				ms(res.P50), ms(res.P99), res.Errors, rp.ratio(r, s))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Median of %d rounds:\n\n", len(rp.rounds))
	fmt.Fprintln(w, "| scenario | req/s | p50 ms | p99 ms | errors | × floor | p99 × floor's |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for s, name := range rp.names {
		errs := 0
		for _, row := range rp.rounds {
			errs += row[s].Errors
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %d | %.3f | %.2f |\n", name,
			rp.medianOf(func(r int) float64 { return rp.rounds[r][s].RPS }),
			msf(rp.medianOf(func(r int) float64 { return float64(rp.rounds[r][s].P50) })),
			msf(rp.medianOf(func(r int) float64 { return float64(rp.rounds[r][s].P99) })),
			errs,
			rp.medianOf(func(r int) float64 { return rp.ratio(r, s) }),
			rp.medianOf(func(r int) float64 {
				if f := rp.rounds[r][rp.floor].P99; f > 0 {
					return float64(rp.rounds[r][s].P99) / float64(f)
				}
				return 0
			}))
	}
}

// between is the median over rounds of a's throughput over b's (both by name), or false if
// either did not run.
func (rp report) between(a, b string) (float64, bool) {
	i, j := slices.Index(rp.names, a), slices.Index(rp.names, b)
	if i < 0 || j < 0 {
		return 0, false
	}
	return rp.medianOf(func(r int) float64 {
		if d := rp.rounds[r][j].RPS; d > 0 {
			return rp.rounds[r][i].RPS / d
		}
		return 0
	}), true
}

// invalid names every scenario that got an error in any round: a run with one is not a
// measurement of the scenario it claims (a refused request is cheaper than a served one).
func (rp report) invalid() []string {
	var out []string
	for s, name := range rp.names {
		for r, row := range rp.rounds {
			if res := row[s]; res.Errors > 0 || res.Requests == 0 {
				why := res.Example
				if res.Requests == 0 {
					why = "no request completed"
				}
				out = append(out, fmt.Sprintf("round %d, %s: %d errors of %d requests (%s)",
					r+1, name, res.Errors, res.Requests, strings.TrimSpace(why)))
			}
		}
	}
	return out
}
