package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ingress sends each request to an instance of the domain that serves its path, in turn.
type ingress struct {
	users, vehicles []*instance
	token           string
	next            atomic.Uint64
}

func (g *ingress) instances(path string) []*instance {
	if route(path) == "vehicles" {
		return g.vehicles
	}
	return g.users
}

// do sends one request as the admin to the next instance of the path's domain.
func (g *ingress) do(method, path string, body any) (int, http.Header, []byte, error) {
	ins := g.instances(path)
	return g.doOn(ins[g.next.Add(1)%uint64(len(ins))], method, path, body)
}

func (g *ingress) doOn(in *instance, method, path string, body any) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, in.url+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// workload is the randomized mix of writes and reads, and what it has seen so far: ids ever
// created (deleted ones stay, to be read and written again), and answers by operation.
type workload struct {
	g        *ingress
	mu       sync.Mutex
	users    []int64
	vehicles []int64
	n        int64
	answers  map[string]int
}

func newWorkload(g *ingress, seed uint64) *workload {
	return &workload{g: g, n: int64(seed % 1e6), answers: map[string]int{}}
}

// pick is a random id among those of users (or vehicles), deleted ones too, and how many
// users there are.
func (w *workload) pick(r *rand.Rand, vehicles bool) (int64, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := w.users
	if vehicles {
		ids = w.vehicles
	}
	if len(ids) == 0 {
		return 1 + r.Int64N(50), len(w.users)
	}
	return ids[r.IntN(len(ids))], len(w.users)
}

func (w *workload) unique() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	return w.n
}

const vinAlphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"

func vin(r *rand.Rand) string {
	b := make([]byte, 17)
	for i := range b {
		b[i] = vinAlphabet[r.IntN(len(vinAlphabet))]
	}
	return string(b)
}

func vehicleBody(r *rand.Rand, owner int64) map[string]any {
	makes := []string{"Toyota", "Ford", "Renault", "Kia", "Volvo"}
	return map[string]any{"userId": owner, "make": makes[r.IntN(len(makes))], "model": fmt.Sprintf("M%d", r.IntN(90)),
		"year": 1990 + r.IntN(35), "vin": vin(r), "licensePlate": fmt.Sprintf("AB-%03d-CD", r.IntN(1000))}
}

// step runs one random operation. Only answers the API documents for it are accepted; a 5xx
// (a 503 included: every write must succeed with the broker away) fails the test.
func (w *workload) step(r *rand.Rand) error {
	var (
		op   string
		code int
		body []byte
		err  error
		ok   []int
	)
	uid, nusers := w.pick(r, false)
	vid, _ := w.pick(r, true)
	switch x := r.IntN(100); {
	case x < 12 || nusers < 5:
		op, ok = "register", []int{201}
		n := w.unique()
		code, _, body, err = w.g.do("POST", "/users", map[string]any{
			"email": fmt.Sprintf("u%d@example.com", n), "name": fmt.Sprintf("User %d", n), "password": "correct horse battery"})
	case x < 20:
		op, ok = "update user", []int{200, 404}
		n := w.unique()
		code, _, body, err = w.g.do("PUT", fmt.Sprintf("/users/%d", uid), map[string]any{
			"email": fmt.Sprintf("moved%d@example.com", n), "name": fmt.Sprintf("Renamed %d", n)})
	case x < 25:
		op, ok = "delete user", []int{204, 404}
		code, _, body, err = w.g.do("DELETE", fmt.Sprintf("/users/%d", uid), nil)
	case x < 42:
		// 422: the owner was deleted, or its USER_CREATED has not reached the vehicles
		// database within VEHICLES_OWNER_WAIT (the broker outage).
		op, ok = "create vehicle", []int{201, 422}
		code, _, body, err = w.g.do("POST", "/vehicles", vehicleBody(r, uid))
	case x < 52:
		op, ok = "update vehicle", []int{200, 404, 422}
		b := vehicleBody(r, uid)
		if r.IntN(2) == 0 {
			delete(b, "userId")
		}
		code, _, body, err = w.g.do("PUT", fmt.Sprintf("/vehicles/%d", vid), b)
	case x < 57:
		op, ok = "delete vehicle", []int{204, 404}
		code, _, body, err = w.g.do("DELETE", fmt.Sprintf("/vehicles/%d", vid), nil)
	default:
		// Reads fill the caches that the checks later prove fresh.
		op, ok = "read", []int{200, 404}
		paths := []string{fmt.Sprintf("/users/%d", uid), fmt.Sprintf("/vehicles/%d", vid),
			fmt.Sprintf("/users/%d/vehicles?limit=100", uid), "/vehicles?limit=100", "/users?limit=100"}
		code, _, body, err = w.g.do("GET", paths[r.IntN(len(paths))], nil)
	}
	if err != nil {
		return err
	}
	if !slices.Contains(ok, code) {
		return fmt.Errorf("%s: %d %s", op, code, body)
	}
	var created struct{ ID int64 }
	if code == 201 {
		if err := json.Unmarshal(body, &created); err != nil {
			return fmt.Errorf("%s: %s: %w", op, body, err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answers[fmt.Sprintf("%s %d", op, code)]++
	switch {
	case op == "register" && code == 201:
		w.users = append(w.users, created.ID)
	case op == "create vehicle" && code == 201:
		w.vehicles = append(w.vehicles, created.ID)
	}
	return nil
}

func (w *workload) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := slices.Sorted(maps.Keys(w.answers))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, w.answers[k])
	}
	return strings.Join(parts, ", ")
}

type dbUser struct {
	ID                int64
	Email, Name, Role string
	UpdatedAt         time.Time
}

type dbVehicle struct {
	ID, UserID                     int64
	Make, Model, VIN, LicensePlate string
	Year                           int32
	Color                          *string
	UpdatedAt                      time.Time
}

// check compares every answer the API gives about every id the workload ever saw, on every
// instance of the domain, with the databases; "" when all agree.
func (w *workload) check(t *testing.T, usersDB, vehiclesDB string) string {
	t.Helper()
	users := map[int64]dbUser{}
	queryDB(t, usersDB, func(c *pgx.Conn) error {
		rows, _ := c.Query(context.Background(), "SELECT id, email, name, role, updated_at FROM users")
		us, err := pgx.CollectRows(rows, pgx.RowToStructByPos[dbUser])
		for _, u := range us {
			users[u.ID] = u
		}
		return err
	})
	vehicles := map[int64]dbVehicle{}
	byOwner := map[int64][]int64{}
	queryDB(t, vehiclesDB, func(c *pgx.Conn) error {
		rows, _ := c.Query(context.Background(), "SELECT id, user_id, make, model, vin, license_plate, year, color, updated_at FROM vehicles")
		vs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[dbVehicle])
		for _, v := range vs {
			vehicles[v.ID] = v
			byOwner[v.UserID] = append(byOwner[v.UserID], v.ID)
		}
		return err
	})
	var faults []string
	// The vehicles database's projection knows exactly the users that exist.
	queryDB(t, vehiclesDB, func(c *pgx.Conn) error {
		rows, _ := c.Query(context.Background(), "SELECT id FROM known_users")
		known, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		for _, id := range known {
			if _, ok := users[id]; !ok {
				faults = append(faults, fmt.Sprintf("user %d is known to the vehicles database but not in the users database", id))
			}
		}
		if len(known) != len(users) && err == nil {
			faults = append(faults, fmt.Sprintf("the vehicles database knows %d users, the users database has %d", len(known), len(users)))
		}
		return err
	})
	for _, v := range vehicles {
		if _, ok := users[v.UserID]; !ok {
			faults = append(faults, fmt.Sprintf("vehicle %d belongs to user %d, who is not in the users database", v.ID, v.UserID))
		}
	}
	w.mu.Lock()
	uids, vids := slices.Clone(w.users), slices.Clone(w.vehicles)
	w.mu.Unlock()
	for id := range users {
		if !slices.Contains(uids, id) {
			uids = append(uids, id) // the admin
		}
	}
	for _, id := range uids {
		u, exists := users[id]
		for _, in := range w.g.users {
			faults = append(faults, w.compare(in, fmt.Sprintf("/users/%d", id), exists, func(b []byte) string {
				var got dbUser
				if err := json.Unmarshal(b, &got); err != nil {
					return err.Error()
				}
				if got.Email != u.Email || got.Name != u.Name || got.Role != u.Role || !got.UpdatedAt.Equal(u.UpdatedAt) {
					return fmt.Sprintf("API %+v, database %+v", got, u)
				}
				return ""
			}))
		}
		want := byOwner[id]
		sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
		for _, in := range w.g.vehicles {
			faults = append(faults, w.compare(in, fmt.Sprintf("/users/%d/vehicles?limit=100", id), exists, func(b []byte) string {
				var page struct{ Items []struct{ ID int64 } }
				if err := json.Unmarshal(b, &page); err != nil {
					return err.Error()
				}
				got := make([]int64, len(page.Items))
				for i, it := range page.Items {
					got[i] = it.ID
				}
				if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
					return fmt.Sprintf("API %v, database %v", got, want)
				}
				return ""
			}))
		}
	}
	for _, id := range vids {
		v, exists := vehicles[id]
		for _, in := range w.g.vehicles {
			faults = append(faults, w.compare(in, fmt.Sprintf("/vehicles/%d", id), exists, func(b []byte) string {
				var got dbVehicle
				if err := json.Unmarshal(b, &got); err != nil {
					return err.Error()
				}
				if got.UserID != v.UserID || got.Make != v.Make || got.Model != v.Model || got.VIN != v.VIN ||
					got.Year != v.Year || got.LicensePlate != v.LicensePlate || !got.UpdatedAt.Equal(v.UpdatedAt) {
					return fmt.Sprintf("API %+v, database %+v", got, v)
				}
				return ""
			}))
		}
	}
	faults = slices.DeleteFunc(faults, func(s string) bool { return s == "" })
	if len(faults) > 10 {
		faults = append(faults[:10], fmt.Sprintf("... and %d more", len(faults)-10))
	}
	return strings.Join(faults, "\n")
}

// compare reads path on in: 200 and a body same says "" about when exists, else 404.
func (w *workload) compare(in *instance, path string, exists bool, same func([]byte) string) string {
	code, h, body, err := w.g.doOn(in, "GET", path, nil)
	if err != nil {
		return err.Error()
	}
	switch {
	case exists && code == 200:
		if d := same(body); d != "" {
			return fmt.Sprintf("GET %s on %s (X-Cache %s): %s", path, in.url, h.Get("X-Cache"), d)
		}
		return ""
	case !exists && code == 404:
		return ""
	}
	return fmt.Sprintf("GET %s on %s (X-Cache %s): %d, the database says it exists: %v", path, in.url, h.Get("X-Cache"), code, exists)
}
