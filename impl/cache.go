package impl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/motorpool/motorpool/cachekeys"
	"github.com/motorpool/motorpool/gen"
	"github.com/motorpool/motorpool/storage"
)

// CacheTTLs are the lifetimes of the cached reads (the plan's values by default).
type CacheTTLs struct {
	User     time.Duration // user:{id}, user:email:{email}
	UserList time.Duration // users:all pages
	Vehicle  time.Duration // vehicle:{id}
	VehList  time.Duration // vehicles:all pages
	UserVehs time.Duration // vehicles:user:{id} pages
	NotFound time.Duration // a cached 404
}

// DefaultCacheTTLs are the plan's: 10 minutes for single records and a user's vehicles, 5 for
// the lists, 30 seconds for a 404.
func DefaultCacheTTLs() CacheTTLs {
	return CacheTTLs{User: 10 * time.Minute, UserList: 5 * time.Minute, Vehicle: 10 * time.Minute,
		VehList: 5 * time.Minute, UserVehs: 10 * time.Minute, NotFound: 30 * time.Second}
}

// Cached is the cache-aside decorator: it embeds the server and answers the cacheable reads
// from the cache (as stored response bytes, with ETag and X-Cache), under the names in package
// cachekeys. Writes pass through: what they make stale is invalidated at the storage seam,
// from the events they commit (package invalidation), so it is the same for every write path
// and survives a crash. Authorization runs before it (in the API layer), so a warm cache never
// shows a caller what they could not see cold.
type Cached struct {
	gen.StrictServerInterface
	store   storage.Store // read by Warm
	cache   storage.Cache
	pending Pending
	ttl     CacheTTLs
	log     *slog.Logger
}

// Pending says which keys await an invalidation that has not reached the cache
// (invalidation.Invalidator): reads of them go to the database.
type Pending interface {
	Bypassed(key, family string) bool
}

var _ gen.StrictServerInterface = (*Cached)(nil)

// NewCached wraps inner. store is read by Warm; cache holds the entries; pending (nil: none)
// names the keys this instance must not serve from the cache.
func NewCached(inner gen.StrictServerInterface, store storage.Store, cache storage.Cache, pending Pending, ttl CacheTTLs, log *slog.Logger) *Cached {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cached{StrictServerInterface: inner, store: store, cache: cache, pending: pending, ttl: ttl, log: log}
}

// bypassed reports whether key (or family) awaits an invalidation here.
func (c *Cached) bypassed(key, family string) bool {
	return c.pending != nil && c.pending.Bypassed(key, family)
}

// Entries are the response bytes behind a kind byte.
const (
	entryOK       = 'j' // a 200 JSON body
	entryNotFound = 'n' // a 404 problem body
)

// cachedResponse writes a cached answer as it is stored: no JSON encoding on a hit. It
// implements the Visit methods of every cached operation.
type cachedResponse struct {
	status      int
	contentType string
	body        []byte
	etag        string
	hit         bool
	notModified bool
}

func (r cachedResponse) write(w http.ResponseWriter) error {
	h := w.Header()
	if r.hit {
		h.Set("X-Cache", "hit")
	} else {
		h.Set("X-Cache", "miss")
	}
	if r.etag != "" {
		h.Set("ETag", r.etag)
	}
	if r.notModified {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", r.contentType)
	w.WriteHeader(r.status)
	_, err := w.Write(r.body)
	return err
}

func (r cachedResponse) VisitGetUserResponse(w http.ResponseWriter) error    { return r.write(w) }
func (r cachedResponse) VisitGetVehicleResponse(w http.ResponseWriter) error { return r.write(w) }
func (r cachedResponse) VisitListUsersResponse(w http.ResponseWriter) error  { return r.write(w) }
func (r cachedResponse) VisitListVehiclesResponse(w http.ResponseWriter) error {
	return r.write(w)
}
func (r cachedResponse) VisitListUserVehiclesResponse(w http.ResponseWriter) error {
	return r.write(w)
}

// passThrough carries an answer that is not cached (a 400, a 503) out of a fill.
type passThrough struct{ resp any }

func (p *passThrough) Error() string { return fmt.Sprintf("not cacheable: %T", p.resp) }

// encodeEntry renders a 200 body or a 404 problem as the generated code would (JSON plus a
// newline), behind its kind byte.
func encodeEntry(kind byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+2)
	out = append(out, kind)
	out = append(out, b...)
	return append(out, '\n'), nil
}

// etagOf is a strong validator of a representation.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// matches implements If-None-Match (RFC 9110 13.1.2: weak comparison, "*" matches any).
func matches(ifNoneMatch *string, etag string) bool {
	if ifNoneMatch == nil {
		return false
	}
	for _, t := range strings.Split(*ifNoneMatch, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// fill classifies an inner answer: ok → a 200 entry, notFound → a 404 entry, anything else
// passes through uncached.
type fillResult struct {
	ok       any // the 200 body
	notFound any // the 404 problem
	other    any // the response as it is
}

// read serves one cacheable read: from the cache, or from inner through fill.
func (c *Cached) read(ctx context.Context, key, family string, ttl time.Duration, withETag bool, ifNoneMatch *string,
	call func(ctx context.Context) (fillResult, error)) (any, error) {
	fill := func(ctx context.Context) ([]byte, time.Duration, error) {
		r, err := call(ctx)
		switch {
		case err != nil:
			return nil, 0, err
		case r.ok != nil:
			b, err := encodeEntry(entryOK, r.ok)
			return b, 0, err
		case r.notFound != nil:
			b, err := encodeEntry(entryNotFound, r.notFound)
			return b, c.ttl.NotFound, err
		}
		return nil, 0, &passThrough{r.other}
	}
	var (
		val []byte
		src storage.Source
		err error
	)
	if key == "" || c.bypassed(key, family) { // no key: the family's version is unknown
		val, _, err = fill(ctx)
		src = storage.SourceBypass
	} else {
		val, src, err = c.cache.Get(ctx, key, ttl, fill)
	}
	var pt *passThrough
	if errors.As(err, &pt) {
		return pt.resp, nil
	}
	if err != nil {
		return nil, err
	}
	if len(val) == 0 {
		return nil, fmt.Errorf("cache: empty entry at %s", key)
	}
	resp := cachedResponse{status: http.StatusOK, contentType: "application/json", body: val[1:], hit: src.Hit()}
	if val[0] == entryNotFound {
		resp.status, resp.contentType = http.StatusNotFound, "application/problem+json"
		return resp, nil
	}
	if withETag {
		resp.etag = etagOf(resp.body)
		resp.notModified = matches(ifNoneMatch, resp.etag)
	}
	return resp, nil
}

// listKey is the key of one page of a family at its current version, or "" when the version
// cannot be read (the cache is away, or the family awaits an invalidation): the page is then
// read uncached.
func (c *Cached) listKey(ctx context.Context, family string, rest string) string {
	if c.bypassed("", family) {
		return ""
	}
	v, err := c.cache.Version(ctx, family)
	if err != nil {
		return ""
	}
	return storage.FamilyKey(family, v, rest)
}

func pageRest(limit *gen.Limit, cursor *string, extra string) string {
	c := ""
	if cursor != nil {
		c = *cursor
	}
	return fmt.Sprintf("%slimit=%d:cursor=%s", extra, pageSize(limit), c)
}

// GetUser is cached at user:{id} for 10 minutes (a 404 for 30 seconds).
func (c *Cached) GetUser(ctx context.Context, req gen.GetUserRequestObject) (gen.GetUserResponseObject, error) {
	r, err := c.read(ctx, cachekeys.User(req.Id), "", c.ttl.User, true, req.Params.IfNoneMatch, func(ctx context.Context) (fillResult, error) {
		resp, err := c.StrictServerInterface.GetUser(ctx, req)
		switch x := resp.(type) {
		case gen.GetUser200JSONResponse:
			return fillResult{ok: gen.User(x)}, err
		case gen.GetUser404ApplicationProblemPlusJSONResponse:
			return fillResult{notFound: x.NotFoundApplicationProblemPlusJSONResponse}, err
		}
		return fillResult{other: resp}, err
	})
	if err != nil {
		return nil, err
	}
	return r.(gen.GetUserResponseObject), nil
}

// GetVehicle is cached at vehicle:{id} for 10 minutes (a 404 for 30 seconds).
func (c *Cached) GetVehicle(ctx context.Context, req gen.GetVehicleRequestObject) (gen.GetVehicleResponseObject, error) {
	r, err := c.read(ctx, cachekeys.Vehicle(req.Id), "", c.ttl.Vehicle, true, req.Params.IfNoneMatch, func(ctx context.Context) (fillResult, error) {
		resp, err := c.StrictServerInterface.GetVehicle(ctx, req)
		switch x := resp.(type) {
		case gen.GetVehicle200JSONResponse:
			return fillResult{ok: gen.Vehicle(x)}, err
		case gen.GetVehicle404ApplicationProblemPlusJSONResponse:
			return fillResult{notFound: x.NotFoundApplicationProblemPlusJSONResponse}, err
		}
		return fillResult{other: resp}, err
	})
	if err != nil {
		return nil, err
	}
	return r.(gen.GetVehicleResponseObject), nil
}

// ListUsers: ?email= is cached at user:email:{email} (10 minutes); pages in the users:all
// family (5 minutes).
func (c *Cached) ListUsers(ctx context.Context, req gen.ListUsersRequestObject) (gen.ListUsersResponseObject, error) {
	call := func(ctx context.Context) (fillResult, error) {
		resp, err := c.StrictServerInterface.ListUsers(ctx, req)
		if x, ok := resp.(gen.ListUsers200JSONResponse); ok {
			return fillResult{ok: gen.UserPage(x)}, err
		}
		return fillResult{other: resp}, err
	}
	var (
		key, family string
		ttl         time.Duration
	)
	switch {
	case req.Params.Email != nil && req.Params.Cursor == nil:
		key, ttl = cachekeys.UserEmail(string(*req.Params.Email)), c.ttl.User
	case req.Params.Email == nil:
		// key stays "" when the version cannot be read: read through uncached.
		key = c.listKey(ctx, cachekeys.Users, pageRest(req.Params.Limit, req.Params.Cursor, ""))
		family, ttl = cachekeys.Users, c.ttl.UserList
	default: // an email lookup with a cursor: rare, not worth a key
		return c.StrictServerInterface.ListUsers(ctx, req)
	}
	r, err := c.read(ctx, key, family, ttl, false, nil, call)
	if err != nil {
		return nil, err
	}
	return r.(gen.ListUsersResponseObject), nil
}

// ListVehicles pages are in the vehicles:all family (5 minutes), every filter included.
func (c *Cached) ListVehicles(ctx context.Context, req gen.ListVehiclesRequestObject) (gen.ListVehiclesResponseObject, error) {
	extra := ""
	if req.Params.UserId != nil {
		extra = "userId=" + strconv.FormatInt(*req.Params.UserId, 10) + ":"
	}
	key := c.listKey(ctx, cachekeys.Vehicles, pageRest(req.Params.Limit, req.Params.Cursor, extra))
	r, err := c.read(ctx, key, cachekeys.Vehicles, c.ttl.VehList, false, nil, func(ctx context.Context) (fillResult, error) {
		resp, err := c.StrictServerInterface.ListVehicles(ctx, req)
		if x, ok := resp.(gen.ListVehicles200JSONResponse); ok {
			return fillResult{ok: gen.VehiclePage(x)}, err
		}
		return fillResult{other: resp}, err
	})
	if err != nil {
		return nil, err
	}
	return r.(gen.ListVehiclesResponseObject), nil
}

// ListUserVehicles pages are in the vehicles:user:{id} family (10 minutes); an unknown user's
// 404 is cached for 30 seconds.
func (c *Cached) ListUserVehicles(ctx context.Context, req gen.ListUserVehiclesRequestObject) (gen.ListUserVehiclesResponseObject, error) {
	family := cachekeys.UserVehicles(req.Id)
	key := c.listKey(ctx, family, pageRest(req.Params.Limit, req.Params.Cursor, ""))
	r, err := c.read(ctx, key, family, c.ttl.UserVehs, false, nil, func(ctx context.Context) (fillResult, error) {
		resp, err := c.StrictServerInterface.ListUserVehicles(ctx, req)
		switch x := resp.(type) {
		case gen.ListUserVehicles200JSONResponse:
			return fillResult{ok: gen.VehiclePage(x)}, err
		case gen.ListUserVehicles404ApplicationProblemPlusJSONResponse:
			return fillResult{notFound: x.NotFoundApplicationProblemPlusJSONResponse}, err
		}
		return fillResult{other: resp}, err
	})
	if err != nil {
		return nil, err
	}
	return r.(gen.ListUserVehiclesResponseObject), nil
}

// Warm loads, at start, the first page of users:all and vehicles:all and the records on those
// pages (user:{id}, vehicle:{id}), the records in one batched call per kind (GetMulti). It
// returns how many entries it stored or found already cached.
func (c *Cached) Warm(ctx context.Context) (int, error) {
	n := 0
	if _, err := c.ListUsers(ctx, gen.ListUsersRequestObject{}); err != nil {
		return n, fmt.Errorf("warm users:all: %w", err)
	}
	if _, err := c.ListVehicles(ctx, gen.ListVehiclesRequestObject{}); err != nil {
		return n, fmt.Errorf("warm vehicles:all: %w", err)
	}
	n += 2
	users, err := c.store.ListUsers(ctx, storage.Page{Limit: defaultLimit})
	if err != nil {
		return n, fmt.Errorf("warm users: %w", err)
	}
	keys := make([]string, len(users))
	byKey := make(map[string]any, len(users))
	for i, u := range users {
		keys[i] = cachekeys.User(u.ID)
		byKey[keys[i]] = toUser(u)
	}
	vehicles, err := c.store.ListVehicles(ctx, storage.VehicleFilter{}, storage.Page{Limit: defaultLimit})
	if err != nil {
		return n, fmt.Errorf("warm vehicles: %w", err)
	}
	vkeys := make([]string, len(vehicles))
	for i, v := range vehicles {
		vkeys[i] = cachekeys.Vehicle(v.ID)
		byKey[vkeys[i]] = toVehicle(v)
	}
	fill := func(_ context.Context, missing []string) ([][]byte, error) {
		out := make([][]byte, len(missing))
		for i, k := range missing {
			b, err := encodeEntry(entryOK, byKey[k])
			if err != nil {
				return nil, err
			}
			out[i] = b
		}
		return out, nil
	}
	for _, batch := range []struct {
		keys []string
		ttl  time.Duration
	}{{keys, c.ttl.User}, {vkeys, c.ttl.Vehicle}} {
		if len(batch.keys) == 0 {
			continue
		}
		vals, err := c.cache.GetMulti(ctx, batch.keys, batch.ttl, fill)
		if err != nil {
			return n, fmt.Errorf("warm records: %w", err)
		}
		for _, v := range vals {
			if v != nil {
				n++
			}
		}
	}
	return n, nil
}
