package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// seedPassword is every load user's password (12 characters or more, as the contract wants).
const seedPassword = "load test password 1"

// population is what the load reads: a token per user and the vehicles to pick from.
type population struct {
	tokens   []string
	vehicles []int64
}

// seed registers users, signs each in and has them create vehicles, through the API of an
// instance whose limiter is off (registration and sign-in are limited per IP, and all of this
// comes from 127.0.0.1). argon2 makes a registration and a sign-in cost ~30 ms of CPU each,
// so the work is spread over a few connections per core.
func seed(ctx context.Context, base string, users, vehicles int) (population, error) {
	c := &apiClient{base: base, http: &http.Client{Timeout: 60 * time.Second}}
	pop := population{tokens: make([]string, users), vehicles: make([]int64, vehicles)}
	workers := 4 * runtime.NumCPU()
	err := parallel(ctx, users, workers, func(i int) error {
		email := fmt.Sprintf("load%d@example.com", i)
		if err := c.do(ctx, "POST", "/users", "", map[string]any{
			"email": email, "name": fmt.Sprintf("Load %d", i), "password": seedPassword,
		}, http.StatusCreated, nil); err != nil {
			return err
		}
		var pair struct {
			AccessToken string `json:"accessToken"`
		}
		if err := c.do(ctx, "POST", "/auth/login", "", map[string]any{"email": email, "password": seedPassword},
			http.StatusOK, &pair); err != nil {
			return err
		}
		pop.tokens[i] = pair.AccessToken
		return nil
	})
	if err != nil {
		return population{}, fmt.Errorf("seed users: %w", err)
	}
	err = parallel(ctx, vehicles, workers, func(i int) error {
		var v struct {
			ID int64 `json:"id"`
		}
		if err := c.do(ctx, "POST", "/vehicles", pop.tokens[i%users], map[string]any{
			"make": "Make", "model": "Model", "year": 2020,
			"vin": fmt.Sprintf("LT%015d", i), "licensePlate": fmt.Sprintf("LT-%d", i),
		}, http.StatusCreated, &v); err != nil {
			return err
		}
		pop.vehicles[i] = v.ID
		return nil
	})
	if err != nil {
		return population{}, fmt.Errorf("seed vehicles: %w", err)
	}
	return pop, nil
}

// prime reads every vehicle once, each with another user's token, so that a cached
// scenario's first round starts warm (10,000 vehicles are more than a warm-up reads) and any
// vehicle or token the load would be refused shows up before the measurement.
func prime(ctx context.Context, base string, pop population) error {
	c := &apiClient{base: base, http: &http.Client{Timeout: 30 * time.Second}}
	return parallel(ctx, len(pop.vehicles), 4*runtime.NumCPU(), func(i int) error {
		return c.do(ctx, "GET", fmt.Sprintf("/vehicles/%d", pop.vehicles[i]), pop.tokens[(i*7+3)%len(pop.tokens)],
			nil, http.StatusOK, nil)
	})
}

type apiClient struct {
	base string
	http *http.Client
}

// do sends a JSON request and decodes the answer into out; any status but want is an error.
func (c *apiClient) do(ctx context.Context, method, path, token string, body any, want int, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// parallel calls f(0..n-1) on workers goroutines and returns the first error, after which
// no new call starts.
func parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	var (
		next     atomic.Int64
		failed   atomic.Bool
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}
