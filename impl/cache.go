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
	"sync"
	"time"

	"github.com/motorpool/motorpool/gen"
	"github.com/motorpool/motorpool/storage"
)

// CacheTTLs are the lifetimes of the cached reads (the plan's values by default).
type CacheTTLs struct {
	User      time.Duration // user:{id}, user:email:{email}
	UserList  time.Duration // users:all pages
	Vehicle   time.Duration // vehicle:{id}
	VehList   time.Duration // vehicles:all pages
	UserVehs  time.Duration // vehicles:user:{id} pages
	NotFound  time.Duration // a cached 404
	RetryEach time.Duration // how often a failed invalidation is retried
}

// DefaultCacheTTLs are the plan's: 10 minutes for single records and a user's vehicles, 5 for
// the lists, 30 seconds for a 404.
func DefaultCacheTTLs() CacheTTLs {
	return CacheTTLs{User: 10 * time.Minute, UserList: 5 * time.Minute, Vehicle: 10 * time.Minute,
		VehList: 5 * time.Minute, UserVehs: 10 * time.Minute, NotFound: 30 * time.Second, RetryEach: 500 * time.Millisecond}
}

// Key families and key names: part of the contract (see README).
const (
	familyUsers    = "users:all"
	familyVehicles = "vehicles:all"
)

func userKey(id int64) string          { return "user:" + strconv.FormatInt(id, 10) }
func userEmailKey(email string) string { return "user:email:" + storage.NormalizeEmail(email) }
func vehicleKey(id int64) string       { return "vehicle:" + strconv.FormatInt(id, 10) }
func userVehiclesFamily(id int64) string {
	return "vehicles:user:" + strconv.FormatInt(id, 10)
}

// Cached is the cache-aside decorator: it embeds the server, answers the cacheable reads from
// the cache (as stored response bytes, with ETag and X-Cache), and invalidates after every
// write the plan names. Authorization runs before it (in the API layer), so a warm cache
// never shows a caller what they could not see cold.
type Cached struct {
	gen.StrictServerInterface
	store storage.Store // read-only: old values a write's invalidation needs
	cache storage.Cache
	ttl   CacheTTLs
	log   *slog.Logger

	mu      sync.Mutex
	pending map[string]struct{} // keys and families whose invalidation has not reached the cache
	wake    chan struct{}
}

var _ gen.StrictServerInterface = (*Cached)(nil)

// NewCached wraps inner. store is read for the old values of a write (a user's old email, a
// vehicle's old owner); cache holds the entries. Run must run for failed invalidations to be
// retried.
func NewCached(inner gen.StrictServerInterface, store storage.Store, cache storage.Cache, ttl CacheTTLs, log *slog.Logger) *Cached {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cached{StrictServerInterface: inner, store: store, cache: cache, ttl: ttl, log: log,
		pending: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

// Run retries failed invalidations until ctx ends.
func (c *Cached) Run(ctx context.Context) {
	t := time.NewTicker(c.ttl.RetryEach)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		}
		c.retryPending(ctx)
	}
}

func (c *Cached) retryPending(ctx context.Context) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return
	}
	var keys, fams []string
	for k := range c.pending {
		if f, ok := strings.CutPrefix(k, "family "); ok {
			fams = append(fams, f)
		} else {
			keys = append(keys, k)
		}
	}
	c.mu.Unlock()
	if err := c.cache.Invalidate(ctx, keys, fams); err != nil {
		return
	}
	c.mu.Lock()
	for _, k := range keys {
		delete(c.pending, k)
	}
	for _, f := range fams {
		delete(c.pending, "family "+f)
	}
	c.mu.Unlock()
	c.log.Info("cache invalidation retried successfully", "keys", len(keys), "families", len(fams))
}

// PendingInvalidations reports how many keys and families await a retried invalidation.
func (c *Cached) PendingInvalidations() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// bypassed reports whether key (or family) awaits an invalidation: until it lands, this
// instance must not serve it from the cache.
func (c *Cached) bypassed(key, family string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if key != "" {
		if _, ok := c.pending[key]; ok {
			return true
		}
	}
	if family != "" {
		if _, ok := c.pending["family "+family]; ok {
			return true
		}
	}
	return false
}

// invalidate runs after a write's commit. On failure the keys are remembered, bypassed and
// retried; the write itself has succeeded and is answered as such.
func (c *Cached) invalidate(ctx context.Context, keys, families []string) {
	err := c.cache.Invalidate(context.WithoutCancel(ctx), keys, families)
	if err == nil {
		return
	}
	c.mu.Lock()
	for _, k := range keys {
		c.pending[k] = struct{}{}
	}
	for _, f := range families {
		c.pending["family "+f] = struct{}{}
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	c.log.Warn("cache invalidation failed; bypassing the keys until a retry succeeds",
		"keys", strings.Join(keys, ","), "families", strings.Join(families, ","), "error", err.Error())
}

// UserChanged invalidates what shows a user whose record changed outside the decorated
// handlers (a password reset).
func (c *Cached) UserChanged(ctx context.Context, u storage.User) {
	c.invalidate(ctx, []string{userKey(u.ID), userEmailKey(u.Email)}, []string{familyUsers})
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
	r, err := c.read(ctx, userKey(req.Id), "", c.ttl.User, true, req.Params.IfNoneMatch, func(ctx context.Context) (fillResult, error) {
		resp, err := c.StrictServerInterface.GetUser(ctx, req)
		switch x := resp.(type) {
		case gen.GetUser200JSONResponse:
			return fillResult{ok: x.Body}, err
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
	r, err := c.read(ctx, vehicleKey(req.Id), "", c.ttl.Vehicle, true, req.Params.IfNoneMatch, func(ctx context.Context) (fillResult, error) {
		resp, err := c.StrictServerInterface.GetVehicle(ctx, req)
		switch x := resp.(type) {
		case gen.GetVehicle200JSONResponse:
			return fillResult{ok: x.Body}, err
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
			return fillResult{ok: x.Body}, err
		}
		return fillResult{other: resp}, err
	}
	var (
		key, family string
		ttl         time.Duration
	)
	switch {
	case req.Params.Email != nil && req.Params.Cursor == nil:
		key, ttl = userEmailKey(string(*req.Params.Email)), c.ttl.User
	case req.Params.Email == nil:
		// key stays "" when the version cannot be read: read through uncached.
		key = c.listKey(ctx, familyUsers, pageRest(req.Params.Limit, req.Params.Cursor, ""))
		family, ttl = familyUsers, c.ttl.UserList
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
	key := c.listKey(ctx, familyVehicles, pageRest(req.Params.Limit, req.Params.Cursor, extra))
	r, err := c.read(ctx, key, familyVehicles, c.ttl.VehList, false, nil, func(ctx context.Context) (fillResult, error) {
		resp, err := c.StrictServerInterface.ListVehicles(ctx, req)
		if x, ok := resp.(gen.ListVehicles200JSONResponse); ok {
			return fillResult{ok: x.Body}, err
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
	family := userVehiclesFamily(req.Id)
	key := c.listKey(ctx, family, pageRest(req.Params.Limit, req.Params.Cursor, ""))
	r, err := c.read(ctx, key, family, c.ttl.UserVehs, false, nil, func(ctx context.Context) (fillResult, error) {
		resp, err := c.StrictServerInterface.ListUserVehicles(ctx, req)
		switch x := resp.(type) {
		case gen.ListUserVehicles200JSONResponse:
			return fillResult{ok: x.Body}, err
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

// Writes. Each invalidates after the inner handler returns (the commit), also when it returned
// an error, since a failure after the commit (a 503 ending sessions) still changed the data.

// CreateUser invalidates users:all and any cached 404 for the new id or email, including
// the 404 of GET /users/{id}/vehicles (a page of the vehicles:user:{id} family).
func (c *Cached) CreateUser(ctx context.Context, req gen.CreateUserRequestObject) (gen.CreateUserResponseObject, error) {
	resp, err := c.StrictServerInterface.CreateUser(ctx, req)
	if x, ok := resp.(gen.CreateUser201JSONResponse); ok {
		c.invalidate(ctx, []string{userKey(x.Body.Id), userEmailKey(string(x.Body.Email))}, []string{familyUsers, userVehiclesFamily(x.Body.Id)})
	}
	return resp, err
}

// UpdateUser invalidates user:{id}, the old and new user:email:{email}, and users:all.
func (c *Cached) UpdateUser(ctx context.Context, req gen.UpdateUserRequestObject) (gen.UpdateUserResponseObject, error) {
	keys := []string{userKey(req.Id), userEmailKey(string(req.Body.Email))}
	if old, err := c.store.GetUser(ctx, req.Id); err == nil {
		keys = append(keys, userEmailKey(old.Email))
	} else if errors.Is(err, storage.ErrUnavailable) {
		// The write would wait on the same database: nothing is changed yet, so answer now
		// rather than after a second call deadline.
		return nil, fmt.Errorf("update user: %w", err)
	}
	resp, err := c.StrictServerInterface.UpdateUser(ctx, req)
	if _, ok := resp.(gen.UpdateUser200JSONResponse); ok || err != nil {
		c.invalidate(ctx, keys, []string{familyUsers})
	}
	return resp, err
}

// DeleteUser invalidates every key that mentions the user: user:{id}, user:email:{email},
// users:all, their vehicles (each vehicle:{id}, vehicles:user:{id}, vehicles:all).
func (c *Cached) DeleteUser(ctx context.Context, req gen.DeleteUserRequestObject) (gen.DeleteUserResponseObject, error) {
	keys := []string{userKey(req.Id)}
	if old, err := c.store.GetUser(ctx, req.Id); err == nil {
		keys = append(keys, userEmailKey(old.Email))
	} else if errors.Is(err, storage.ErrUnavailable) {
		return nil, fmt.Errorf("delete user: %w", err) // as in UpdateUser
	}
	ids, err := c.vehicleIDs(ctx, req.Id)
	if errors.Is(err, storage.ErrUnavailable) {
		return nil, fmt.Errorf("delete user: %w", err)
	}
	for _, id := range ids {
		keys = append(keys, vehicleKey(id))
	}
	resp, err := c.StrictServerInterface.DeleteUser(ctx, req)
	if _, ok := resp.(gen.DeleteUser204Response); ok || err != nil {
		c.invalidate(ctx, keys, []string{familyUsers, familyVehicles, userVehiclesFamily(req.Id)})
	}
	return resp, err
}

// vehicleIDs lists the ids of a user's vehicles, whose entries a deletion must drop.
func (c *Cached) vehicleIDs(ctx context.Context, userID int64) ([]int64, error) {
	var ids []int64
	after := int64(0)
	for {
		vs, err := c.store.ListVehicles(ctx, storage.VehicleFilter{UserID: &userID}, storage.Page{AfterID: after, Limit: 500})
		if err != nil {
			return ids, err
		}
		for _, v := range vs {
			ids = append(ids, v.ID)
		}
		if len(vs) < 500 {
			return ids, nil
		}
		after = vs[len(vs)-1].ID
	}
}

// CreateVehicle invalidates vehicles:all, the owner's list, and a cached 404 for the new id.
func (c *Cached) CreateVehicle(ctx context.Context, req gen.CreateVehicleRequestObject) (gen.CreateVehicleResponseObject, error) {
	resp, err := c.StrictServerInterface.CreateVehicle(ctx, req)
	if x, ok := resp.(gen.CreateVehicle201JSONResponse); ok {
		c.invalidate(ctx, []string{vehicleKey(x.Body.Id)}, []string{familyVehicles, userVehiclesFamily(x.Body.UserId)})
	}
	return resp, err
}

// vehicleWriter is implemented by Server: its vehicle writes also return the vehicle their
// owner check read (nil when unread), which spares the decorator its own read of the old owner.
type vehicleWriter interface {
	updateVehicle(ctx context.Context, req gen.UpdateVehicleRequestObject) (gen.UpdateVehicleResponseObject, *storage.Vehicle, error)
	deleteVehicle(ctx context.Context, req gen.DeleteVehicleRequestObject) (gen.DeleteVehicleResponseObject, *storage.Vehicle, error)
}

// A drifted signature would silently bring back the second read.
var _ vehicleWriter = (*Server)(nil)

// storedVehicle is the vehicle as the store holds it, nil when it cannot be read.
func (c *Cached) storedVehicle(ctx context.Context, id int64) *storage.Vehicle {
	v, err := c.store.GetVehicle(ctx, id)
	if err != nil {
		return nil
	}
	return &v
}

// UpdateVehicle invalidates vehicle:{id}, vehicles:all, and the lists of the old and the new
// owner.
func (c *Cached) UpdateVehicle(ctx context.Context, req gen.UpdateVehicleRequestObject) (gen.UpdateVehicleResponseObject, error) {
	// Without a new owner the owner stays, and the answer names it: the old owner only matters
	// when the request may move the vehicle.
	moves := req.Body.UserId != nil
	var (
		resp gen.UpdateVehicleResponseObject
		old  *storage.Vehicle
		err  error
	)
	if vw, ok := c.StrictServerInterface.(vehicleWriter); ok {
		resp, old, err = vw.updateVehicle(ctx, req)
		if moves && old == nil && err != nil {
			// It failed before reading the vehicle, so it changed nothing: this read is as
			// good as one made before it.
			old = c.storedVehicle(ctx, req.Id)
		}
	} else {
		if moves {
			old = c.storedVehicle(ctx, req.Id)
		}
		resp, err = c.StrictServerInterface.UpdateVehicle(ctx, req)
	}
	if x, ok := resp.(gen.UpdateVehicle200JSONResponse); ok || err != nil {
		fams := []string{familyVehicles}
		if moves {
			if old != nil {
				fams = append(fams, userVehiclesFamily(old.UserID))
			}
			fams = append(fams, userVehiclesFamily(*req.Body.UserId))
		}
		if ok {
			fams = append(fams, userVehiclesFamily(x.Body.UserId))
		}
		c.invalidate(ctx, []string{vehicleKey(req.Id)}, fams)
	}
	return resp, err
}

// DeleteVehicle invalidates vehicle:{id}, vehicles:all and the owner's list.
func (c *Cached) DeleteVehicle(ctx context.Context, req gen.DeleteVehicleRequestObject) (gen.DeleteVehicleResponseObject, error) {
	var (
		resp gen.DeleteVehicleResponseObject
		old  *storage.Vehicle
		err  error
	)
	if vw, ok := c.StrictServerInterface.(vehicleWriter); ok {
		resp, old, err = vw.deleteVehicle(ctx, req)
		if old == nil && err != nil {
			// As in UpdateVehicle: nothing was deleted, so reading now is reading before.
			old = c.storedVehicle(ctx, req.Id)
		}
	} else {
		old = c.storedVehicle(ctx, req.Id)
		resp, err = c.StrictServerInterface.DeleteVehicle(ctx, req)
	}
	if _, ok := resp.(gen.DeleteVehicle204Response); ok || err != nil {
		fams := []string{familyVehicles}
		if old != nil {
			fams = append(fams, userVehiclesFamily(old.UserID))
		}
		c.invalidate(ctx, []string{vehicleKey(req.Id)}, fams)
	}
	return resp, err
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
		keys[i] = userKey(u.ID)
		byKey[keys[i]] = toUser(u)
	}
	vehicles, err := c.store.ListVehicles(ctx, storage.VehicleFilter{}, storage.Page{Limit: defaultLimit})
	if err != nil {
		return n, fmt.Errorf("warm vehicles: %w", err)
	}
	vkeys := make([]string, len(vehicles))
	for i, v := range vehicles {
		vkeys[i] = vehicleKey(v.ID)
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
