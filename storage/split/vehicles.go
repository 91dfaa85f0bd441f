package split

import (
	"context"
	"errors"
	"fmt"

	"github.com/motorpool/motorpool/storage"
)

// CreateVehicle implements storage.Store. An owner the projection does not know yet is waited
// for, up to OwnerWait.
func (s *Store) CreateVehicle(ctx context.Context, v storage.NewVehicle) (storage.Vehicle, error) {
	vs, err := s.vehicles()
	if err != nil {
		return storage.Vehicle{}, err
	}
	created, err := vs.CreateVehicle(ctx, v)
	if unknownOwner(err) {
		if known, werr := s.awaitOwner(ctx, v.UserID); werr != nil {
			return storage.Vehicle{}, werr
		} else if known {
			created, err = vs.CreateVehicle(ctx, v)
		}
	}
	return created, err
}

// UpdateVehicle implements storage.Store, waiting for a new owner as CreateVehicle does.
func (s *Store) UpdateVehicle(ctx context.Context, id int64, v storage.VehicleUpdate) (storage.Vehicle, error) {
	vs, err := s.vehicles()
	if err != nil {
		return storage.Vehicle{}, err
	}
	updated, err := vs.UpdateVehicle(ctx, id, v)
	if unknownOwner(err) && v.UserID != nil {
		if known, werr := s.awaitOwner(ctx, *v.UserID); werr != nil {
			return storage.Vehicle{}, werr
		} else if known {
			updated, err = vs.UpdateVehicle(ctx, id, v)
		}
	}
	return updated, err
}

// GetVehicle implements storage.Store.
func (s *Store) GetVehicle(ctx context.Context, id int64) (storage.Vehicle, error) {
	vs, err := s.vehicles()
	if err != nil {
		return storage.Vehicle{}, err
	}
	return vs.GetVehicle(ctx, id)
}

// ListVehicles implements storage.Store.
func (s *Store) ListVehicles(ctx context.Context, f storage.VehicleFilter, p storage.Page) ([]storage.Vehicle, error) {
	vs, err := s.vehicles()
	if err != nil {
		return nil, err
	}
	return vs.ListVehicles(ctx, f, p)
}

// DeleteVehicle implements storage.Store.
func (s *Store) DeleteVehicle(ctx context.Context, id int64) error {
	vs, err := s.vehicles()
	if err != nil {
		return err
	}
	return vs.DeleteVehicle(ctx, id)
}

func unknownOwner(err error) bool {
	var fe *storage.FieldError
	return errors.As(err, &fe) && fe.Field == "userId" && errors.Is(fe.Err, storage.ErrReference)
}

// awaitOwner looks at the projection, with backoff, until it knows user id or OwnerWait has
// passed (false, nil: the owner does not exist, as far as anyone can tell). It polls because
// any instance's consumer may be the one that applies the USER_CREATED. A user whose deletion
// the projection applied is not waited for: they will never be known again.
func (s *Store) awaitOwner(ctx context.Context, id int64) (bool, error) {
	if gone, err := s.cfg.Owners.UserDeleted(ctx, id); err != nil || gone {
		return false, err
	}
	waited, backoff := 0*firstBackoff, firstBackoff
	for waited < s.cfg.OwnerWait {
		d := min(backoff, s.cfg.OwnerWait-waited)
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("%w: waiting for owner %d: %w", storage.ErrUnavailable, id, ctx.Err())
		case <-s.cfg.After(d):
		}
		waited += d
		backoff = min(2*backoff, maxBackoff)
		known, err := s.cfg.Owners.KnownUser(ctx, id)
		if err != nil || known {
			return known, err
		}
	}
	return false, nil
}
