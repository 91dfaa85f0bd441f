package sqlite

import (
	"context"
	"fmt"

	"github.com/motorpool/motorpool/events"
	sqlitedb "github.com/motorpool/motorpool/sqlc/sqlite"
	"github.com/motorpool/motorpool/storage"
)

// CreateVehicle implements storage.Store.
func (s *Store) CreateVehicle(ctx context.Context, v storage.NewVehicle) (storage.Vehicle, error) {
	var row sqlitedb.Vehicle
	err := s.inTx(ctx, "create vehicle", func(q *txn) error {
		var err error
		row, err = q.CreateVehicle(ctx, sqlitedb.CreateVehicleParams{
			UserID:       v.UserID,
			Make:         v.Make,
			Model:        v.Model,
			Year:         int64(v.Year),
			Vin:          v.VIN,
			LicensePlate: v.LicensePlate,
			Color:        v.Color,
			CreatedAt:    storage.Now(),
		})
		if err != nil {
			return translate("create vehicle", err)
		}
		return recordVehicle(ctx, q, events.VehicleCreated, row, 0, row.Revision, row.CreatedAt)
	})
	if err != nil {
		return storage.Vehicle{}, err
	}
	return toVehicle(row), nil
}

// GetVehicle implements storage.Store.
func (s *Store) GetVehicle(ctx context.Context, id int64) (storage.Vehicle, error) {
	row, err := s.q.GetVehicle(ctx, id)
	if err != nil {
		return storage.Vehicle{}, translate("get vehicle", err)
	}
	return toVehicle(row), nil
}

// ListVehicles implements storage.Store.
func (s *Store) ListVehicles(ctx context.Context, f storage.VehicleFilter, p storage.Page) ([]storage.Vehicle, error) {
	if p.Limit <= 0 {
		return nil, fmt.Errorf("list vehicles: page limit %d is not positive", p.Limit)
	}
	var (
		rows []sqlitedb.Vehicle
		err  error
	)
	if f.UserID != nil {
		rows, err = s.q.ListVehiclesByUser(ctx, sqlitedb.ListVehiclesByUserParams{
			UserID: *f.UserID, AfterID: p.AfterID, MaxRows: int64(p.Limit),
		})
	} else {
		rows, err = s.q.ListVehicles(ctx, sqlitedb.ListVehiclesParams{AfterID: p.AfterID, MaxRows: int64(p.Limit)})
	}
	if err != nil {
		return nil, translate("list vehicles", err)
	}
	vehicles := make([]storage.Vehicle, 0, len(rows))
	for _, r := range rows {
		vehicles = append(vehicles, toVehicle(r))
	}
	return vehicles, nil
}

// UpdateVehicle implements storage.Store.
func (s *Store) UpdateVehicle(ctx context.Context, id int64, v storage.VehicleUpdate) (storage.Vehicle, error) {
	var row sqlitedb.Vehicle
	err := s.inTx(ctx, "update vehicle", func(q *txn) error {
		previous, err := q.GetVehicleOwner(ctx, id)
		if err != nil {
			return translate("update vehicle", err)
		}
		row, err = q.UpdateVehicle(ctx, sqlitedb.UpdateVehicleParams{
			ID:           id,
			UserID:       v.UserID,
			Make:         v.Make,
			Model:        v.Model,
			Year:         int64(v.Year),
			Vin:          v.VIN,
			LicensePlate: v.LicensePlate,
			Color:        v.Color,
			UpdatedAt:    storage.Now(),
		})
		if err != nil {
			return translate("update vehicle", err)
		}
		return recordVehicle(ctx, q, events.VehicleUpdated, row, previous, row.Revision, row.UpdatedAt)
	})
	if err != nil {
		return storage.Vehicle{}, err
	}
	return toVehicle(row), nil
}

// DeleteVehicle implements storage.Store.
func (s *Store) DeleteVehicle(ctx context.Context, id int64) error {
	return s.inTx(ctx, "delete vehicle", func(q *txn) error {
		row, err := q.DeleteVehicle(ctx, id)
		if err != nil {
			return translate("delete vehicle", err)
		}
		return recordVehicle(ctx, q, events.VehicleDeleted, row, 0, row.Revision+1, storage.Now())
	})
}

func toVehicle(r sqlitedb.Vehicle) storage.Vehicle {
	return storage.Vehicle{
		ID:           r.ID,
		UserID:       r.UserID,
		Make:         r.Make,
		Model:        r.Model,
		Year:         int32(r.Year),
		VIN:          r.Vin,
		LicensePlate: r.LicensePlate,
		Color:        r.Color,
		CreatedAt:    r.CreatedAt.UTC(),
		UpdatedAt:    r.UpdatedAt.UTC(),
	}
}
