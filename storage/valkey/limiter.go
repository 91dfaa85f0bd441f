package valkey

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/storage"
)

// Storage format of the limiter (each bucket is one key, the caller's LimitRequest.Key under the
// client's KeyPrefix; times are unix microseconds of the server's clock, in decimal):
//
//	token bucket    string: the time the bucket is full again (GCRA's theoretical arrival
//	                time). PTTL: until then.
//	sliding window  sorted set: one member per token taken in the last window, scored by its
//	                time. PTTL: the window, from the last token taken.
//	fixed window    hash: start (the window's start), n (tokens taken in it). PTTL: until the
//	                window ends.
//
// The PTTLs are rounded up to the millisecond: a key never disappears before its state would
// read as empty anyway, and the scripts judge by TIME, never by whether the key is there yet.

var (
	//go:embed lua/limit_token_bucket.lua
	limitTokenBucketLua string
	//go:embed lua/limit_sliding_window.lua
	limitSlidingWindowLua string
	//go:embed lua/limit_fixed_window.lua
	limitFixedWindowLua string
	//go:embed lua/limit_refund.lua
	limitRefundLua string
	//go:embed lua/limit_token_bucket_batch.lua
	limitTokenBucketBatchLua string
)

// The limiter scripts. Never retried by valkey-go: newScript uses NewLuaScript, not
// NewLuaScriptRetryable, and evalsha/eval build plain EVALSHA/EVAL commands, which carry no
// read-only or retryable tag. The library retries only commands with that tag (and cluster
// redirections, MOVED/ASK/TRYAGAIN, which the server sends instead of running the script), so
// a script that may have run is never sent again and no token is taken twice. The one resend
// here is after NOSCRIPT, which the server answers without running anything.
var (
	limitTokenBucketScript   = newScript(limitTokenBucketLua)
	limitSlidingWindowScript = newScript(limitSlidingWindowLua)
	limitFixedWindowScript   = newScript(limitFixedWindowLua)
	limitRefundScript        = newScript(limitRefundLua)
	limitTokenBucketBatch    = newScript(limitTokenBucketBatchLua)
)

// Limiter is storage.Limiter on Valkey: each bucket is one atomic script that reads the
// server's clock (TIME), so every instance sharing the server shares the buckets exactly and
// the instances' clocks do not matter. It uses the Client's pool and does not own it.
type Limiter struct {
	c       *Client
	timeout time.Duration
	batch   *batcher // token buckets on a single server
}

var _ storage.Limiter = (*Limiter)(nil)

// NewLimiter returns the limiter kept on c's server under c's key prefix. Each Allow gives up
// after timeout (the client's CommandTimeout when timeout is not positive, or the caller's
// context deadline when that is sooner): the rate limiter sits in front of every request, so
// it should be tens of milliseconds, and the caller decides what a failed call means.
func NewLimiter(c *Client, timeout time.Duration) *Limiter {
	l := &Limiter{c: c, timeout: timeout}
	l.batch = &batcher{l: l}
	return l
}

// bucket is one request's script call. The scripts take the same arguments: the window (the
// interval per token for the token bucket) in µs, the limit, the cost.
func (l *Limiter) bucket(r storage.LimitRequest) scriptCall {
	b := scriptCall{keys: []string{l.c.prefix + r.Key}}
	span := micros(r.Window)
	switch r.Algorithm {
	case storage.SlidingWindow:
		b.s = limitSlidingWindowScript
	case storage.FixedWindow:
		b.s = limitFixedWindowScript
	default:
		b.s, span = limitTokenBucketScript, r.TokenInterval().Microseconds()
	}
	b.args = []string{strconv.FormatInt(span, 10), strconv.Itoa(r.Limit), strconv.Itoa(max(r.Cost, 1))}
	return b
}

// micros is d in whole microseconds, rounded up.
func micros(d time.Duration) int64 { return int64((d + time.Microsecond - 1) / time.Microsecond) }

// Allow implements storage.Limiter. Token buckets on a single server are decided in a batch
// with other requests arriving together (batcher): one script call, one round trip. Otherwise
// every bucket's script goes out in one pipeline (one DoMulti; valkey-go splits it by node on a
// cluster, so buckets of different subjects may live in different slots), as EVALSHA. Only if
// the server has lost the scripts (a restart, a failover, SCRIPT FLUSH) does a second round
// trip send the ones it refused as EVAL.
func (l *Limiter) Allow(ctx context.Context, reqs []storage.LimitRequest) ([]storage.LimitResult, error) {
	if len(reqs) == 0 {
		return []storage.LimitResult{}, nil
	}
	for _, r := range reqs {
		if err := r.Check(); err != nil {
			return nil, fmt.Errorf("valkey: allow: %w", err)
		}
	}
	ctx, cancel := l.withTimeout(ctx)
	defer cancel()
	tokenBuckets := allTokenBucket(reqs)
	if tokenBuckets && l.c.vk.Mode() != valkeygo.ClientModeCluster {
		return l.batch.allow(ctx, reqs)
	}
	p := l.prepare(reqs, tokenBuckets)
	res := l.c.vk.DoMulti(ctx, p.cmds...)
	rescue(ctx, l.c.vk, res, p.eval)
	return p.finish(ctx, res)
}

// limitCall is an Allow whose commands are built but not sent, so that they can share a
// pipeline with other work, and share its rescue too: eval(i)
// builds cmds[i]'s EVAL for rescue. finish reads their rescued replies, in order, and takes
// any further round trip the call needs (a refund).
type limitCall struct {
	cmds   valkeygo.Commands
	eval   func(i int) valkeygo.Completed
	finish func(ctx context.Context, res []valkeygo.ValkeyResult) ([]storage.LimitResult, error)
}

// prepare builds the commands of reqs (checked, not empty): one all-or-nothing script per
// hash slot for token buckets on a cluster, else one script per bucket.
func (l *Limiter) prepare(reqs []storage.LimitRequest, tokenBuckets bool) limitCall {
	if tokenBuckets {
		return l.prepareGrouped(reqs)
	}
	vk := l.c.vk
	buckets := make([]scriptCall, len(reqs))
	cmds := make(valkeygo.Commands, len(reqs))
	for i, r := range reqs {
		buckets[i] = l.bucket(r)
		cmds[i] = buckets[i].evalsha(vk)
	}
	eval := func(i int) valkeygo.Completed { return buckets[i].eval(vk) }
	finish := func(ctx context.Context, res []valkeygo.ValkeyResult) ([]storage.LimitResult, error) {
		out := make([]storage.LimitResult, len(reqs))
		denied := false
		for i, r := range res {
			var err error
			out[i], err = decodeLimit(r, reqs[i].Limit)
			if err != nil {
				return nil, fmt.Errorf("valkey: allow %s: %w", reqs[i].Key, err)
			}
			denied = denied || !out[i].Allowed
		}
		if denied {
			if err := l.refund(ctx, reqs, out); err != nil {
				return nil, fmt.Errorf("valkey: allow: refund: %w", err)
			}
		}
		return out, nil
	}
	return limitCall{cmds: cmds, eval: eval, finish: finish}
}

func allTokenBucket(reqs []storage.LimitRequest) bool {
	for _, r := range reqs {
		if r.Algorithm != "" && r.Algorithm != storage.TokenBucket {
			return false
		}
	}
	return true
}

// slotTag is the part of a key between its first '{' and the next '}', which is what a
// cluster hashes; keys with one tag can go to one script.
func slotTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// prepareGrouped decides token buckets on a cluster with one all-or-nothing script call per
// hash slot (a request's buckets for one subject share one), in one pipeline; when a group
// refuses, the groups that charged are refunded.
func (l *Limiter) prepareGrouped(reqs []storage.LimitRequest) limitCall {
	vk := l.c.vk
	type group struct {
		idx        []int
		keys, args []string
	}
	var groups []*group
	for i, r := range reqs {
		var g *group
		for _, h := range groups {
			if slotTag(reqs[h.idx[0]].Key) == slotTag(r.Key) {
				g = h
				break
			}
		}
		if g == nil {
			// The batch script's ARGV: one request, its bucket count (set below), their triples.
			g = &group{args: []string{"1", ""}}
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
		g.keys = append(g.keys, l.c.prefix+r.Key)
		g.args = append(g.args, strconv.FormatInt(r.TokenInterval().Microseconds(), 10), strconv.Itoa(r.Limit), strconv.Itoa(max(r.Cost, 1)))
	}
	cmds := make(valkeygo.Commands, len(groups))
	for j, g := range groups {
		g.args[1] = strconv.Itoa(len(g.idx))
		cmds[j] = limitTokenBucketBatch.evalsha(vk, g.keys, g.args)
	}
	eval := func(j int) valkeygo.Completed { return limitTokenBucketBatch.eval(vk, groups[j].keys, groups[j].args) }
	finish := func(ctx context.Context, res []valkeygo.ValkeyResult) ([]storage.LimitResult, error) {
		out := make([]storage.LimitResult, len(reqs))
		charged := make([]bool, len(reqs))
		denied := false
		for j, r := range res {
			v, err := r.AsIntSlice()
			if err != nil {
				return nil, fmt.Errorf("valkey: allow: %w", err)
			}
			if len(v) != 5*len(groups[j].idx) {
				return nil, errors.New("valkey: allow: unexpected reply from the limiter script")
			}
			for k, i := range groups[j].idx {
				row := v[5*k : 5*k+5]
				out[i] = storage.LimitResult{Allowed: row[0] == 1, Limit: reqs[i].Limit, Remaining: int(row[1]),
					Reset: time.Duration(row[2]) * time.Microsecond, RetryAfter: time.Duration(row[3]) * time.Microsecond}
				charged[i] = row[4] == 1
				denied = denied || row[0] == 0
			}
		}
		if denied {
			var refund []storage.LimitRequest
			var refundOut []storage.LimitResult
			var at []int
			for i := range reqs {
				if charged[i] {
					refund, refundOut, at = append(refund, reqs[i]), append(refundOut, out[i]), append(at, i)
				}
			}
			if len(refund) > 0 {
				if err := l.refund(ctx, refund, refundOut); err != nil {
					return nil, fmt.Errorf("valkey: allow: refund: %w", err)
				}
				for k, i := range at {
					out[i] = refundOut[k]
				}
			}
		}
		return out, nil
	}
	return limitCall{cmds: cmds, eval: eval, finish: finish}
}

// refund gives back what the buckets that allowed took, when another refused: the buckets
// live in different hash slots, so one script cannot decide them all at once; this second
// round trip happens only on the refusing path.
func (l *Limiter) refund(ctx context.Context, reqs []storage.LimitRequest, out []storage.LimitResult) error {
	var calls []scriptCall
	for i, r := range reqs {
		if !out[i].Allowed {
			continue
		}
		calls = append(calls, scriptCall{s: limitRefundScript, keys: []string{l.c.Key(r.Key)},
			args: []string{strconv.FormatInt(r.TokenInterval().Microseconds(), 10), strconv.Itoa(max(r.Cost, 1))}})
		out[i].Remaining += max(r.Cost, 1)
	}
	if len(calls) == 0 {
		return nil
	}
	for _, r := range execScripts(ctx, l.c.vk, calls) {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}

// decodeLimit reads a limiter script's reply: {allowed, remaining, reset µs, retry after µs}.
func decodeLimit(r valkeygo.ValkeyResult, limit int) (storage.LimitResult, error) {
	v, err := r.AsIntSlice()
	if err != nil {
		return storage.LimitResult{}, err
	}
	if len(v) != 4 {
		return storage.LimitResult{}, errors.New("unexpected reply from the limiter script")
	}
	return storage.LimitResult{
		Allowed:    v[0] == 1,
		Limit:      limit,
		Remaining:  int(v[1]),
		Reset:      time.Duration(v[2]) * time.Microsecond,
		RetryAfter: time.Duration(v[3]) * time.Microsecond,
	}, nil
}

// withTimeout bounds one Allow by the limiter's timeout, or the client's.
func (l *Limiter) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.timeout > 0 {
		return context.WithTimeout(ctx, l.timeout)
	}
	return l.c.withTimeout(ctx)
}

// Ping implements storage.Limiter.
func (l *Limiter) Ping(ctx context.Context) error { return l.c.Ping(ctx) }

// Close implements storage.Limiter. It does nothing: the Client is shared, and whoever opened
// it closes it.
func (l *Limiter) Close() error { return nil }
