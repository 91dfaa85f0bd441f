package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/relay"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/deadline"
	"github.com/motorpool/motorpool/storage/postgres"
	"github.com/motorpool/motorpool/storage/split"
	"github.com/motorpool/motorpool/storage/sqlite"
)

// backend is a durable store that can migrate itself and report its pool, with the outbox its
// writes record their events in and its projection of the users, and whose commits can be
// observed.
type backend interface {
	storage.Store
	storage.Outbox
	storage.UserProjection
	storage.Observable
	Migrate(ctx context.Context) (int, error)
	Stats() storage.PoolStats
}

// stores are the databases a process opened (cfg.databases()), in that order.
type stores struct {
	dbs      []database
	backends []backend
	two      bool    // a database per domain
	users    backend // the users domain's; nil when it is not opened
	vehicles backend // the vehicles domain's; nil when it is not opened
	wakers   map[backend]*waker
}

// waker wakes the relay of a backend's outbox when a write through this process commits (see
// relay.Relay.Wake); set once the relay runs.
type waker struct{ r atomic.Pointer[relay.Relay] }

func (w *waker) wake() {
	if r := w.r.Load(); r != nil {
		r.Wake()
	}
}

// migrateAsOwners applies the migrations of each database that names its owner
// (MIGRATE_DATABASE_URL and the domains' twins) as that owner, each on a pool of its own
// closed before the application's opens: no connection that serves requests may run DDL.
// all reports whether every database this process opens was migrated so.
func migrateAsOwners(ctx context.Context, cfg config) (applied int, all bool, err error) {
	all = true
	for _, d := range cfg.databases() {
		if d.MigrateURL == "" {
			all = false
			continue
		}
		s, err := postgres.Open(ctx, postgres.Config{URL: d.MigrateURL, ConnectTimeout: cfg.DBConnTimeout})
		if err != nil {
			return applied, false, fmt.Errorf("open PostgreSQL (%s migrations, %s): %w", d.name(), maskURL(d.MigrateURL), err)
		}
		n, err := s.Migrate(ctx)
		s.Close()
		applied += n
		if err != nil {
			return applied, false, fmt.Errorf("%s database: %w", d.name(), err)
		}
	}
	return applied, all, nil
}

func (d database) name() string {
	if d.domain == "" {
		return "the"
	}
	return "the " + string(d.domain)
}

// openStores opens every database of cfg.databases(), and migrates those that
// migrateAsOwners did not.
func openStores(ctx context.Context, cfg config) (*stores, int, error) {
	s := &stores{dbs: cfg.databases(), two: cfg.twoDatabases(), wakers: map[backend]*waker{}}
	applied := 0
	for _, d := range s.dbs {
		b, err := openBackend(ctx, cfg, d)
		if err != nil {
			s.close()
			return nil, applied, err
		}
		s.backends = append(s.backends, b)
		s.wakers[b] = &waker{}
		if d.MigrateURL == "" {
			n, err := b.Migrate(ctx)
			applied += n
			if errors.Is(err, postgres.ErrNotOwner) {
				s.close()
				return nil, applied, fmt.Errorf("migrate %s database: %w (set MIGRATE_DATABASE_URL, or the domain's MIGRATE_USERS_DATABASE_URL or MIGRATE_VEHICLES_DATABASE_URL, to the owner's URL: README.md, Least privilege)", d.name(), err)
			} else if err != nil {
				s.close()
				return nil, applied, fmt.Errorf("migrate %s database: %w", d.name(), err)
			}
		}
		if d.domain == "" || d.domain == api.DomainUsers {
			s.users = b
		}
		if d.domain == "" || d.domain == api.DomainVehicles {
			s.vehicles = b
		}
	}
	return s, applied, nil
}

func openBackend(ctx context.Context, cfg config, d database) (backend, error) {
	if d.URL == "" {
		s, err := sqlite.Open(ctx, sqlite.Config{Path: cfg.SQLitePath, MaxOpenConns: int(cfg.DBMaxConns)})
		if err != nil {
			return nil, fmt.Errorf("open SQLite (SQLITE_PATH=%s): %w", cfg.SQLitePath, err)
		}
		return s, nil
	}
	s, err := postgres.Open(ctx, postgres.Config{
		URL:             d.URL,
		MaxConns:        cfg.DBMaxConns,
		MinConns:        cfg.DBMinConns,
		ConnectTimeout:  cfg.DBConnTimeout,
		MaxConnLifetime: cfg.DBConnLifetime,
		MaxConnIdleTime: cfg.DBConnIdleTime,
		Tracer:          pgTracer(cfg),
	})
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL (%s database, %s): %w", d.name(), maskURL(d.URL), err)
	}
	return s, nil
}

func (s *stores) close() {
	for _, b := range s.backends {
		_ = b.Close()
	}
}

// stats is the pools' state, summed over the databases.
func (s *stores) stats() storage.PoolStats {
	var sum storage.PoolStats
	for _, b := range s.backends {
		st := b.Stats()
		sum.MaxConns += st.MaxConns
		sum.OpenConns += st.OpenConns
		sum.InUse += st.InUse
		sum.Idle += st.Idle
		sum.WaitCount += st.WaitCount
		sum.WaitDuration += st.WaitDuration
	}
	return sum
}

// outboxes are the databases' outboxes, each named for its readiness check.
func (s *stores) outboxes() []namedOutbox {
	var outs []namedOutbox
	for i, b := range s.backends {
		name := "outbox"
		if d := s.dbs[i].domain; d != "" {
			name += "_" + string(d)
		}
		outs = append(outs, namedOutbox{name: name, Outbox: b, wake: s.wakers[b]})
	}
	return outs
}

// wired is what the service works on: every call bounded by DB_QUERY_TIMEOUT (the migrations
// ran unbounded), and every commit told to committed (the cache's invalidation; nil without a
// cache) and to its outbox's relay.
type wired struct {
	store  storage.Store
	owners storage.UserProjection // for the vehicles domain's owner checks
	// projection is the vehicles database's projection that the users' events feed: nil but
	// for a database per domain with the vehicles domain served.
	projection storage.UserProjection
}

func (s *stores) wire(cfg config, committed storage.Committed) wired {
	observe := func(b backend) storage.Observed {
		w := s.wakers[b]
		return b.Observe(func(ctx context.Context, evs []events.Event) {
			if committed != nil {
				committed(ctx, evs)
			}
			w.wake()
		})
	}
	t := cfg.DBQueryTimeout
	if !s.two {
		o := observe(s.backends[0])
		return wired{store: deadline.Wrap(o, t), owners: deadline.WrapProjection(o, t)}
	}
	sc := split.Config{OwnerWait: cfg.OwnerWait}
	if s.users != nil {
		sc.Users = deadline.Wrap(observe(s.users), t)
	}
	if s.vehicles != nil {
		o := observe(s.vehicles)
		sc.Vehicles, sc.Owners = deadline.Wrap(o, t), deadline.WrapProjection(o, t)
	}
	sp := split.New(sc)
	return wired{store: sp, owners: sp, projection: sc.Owners}
}
