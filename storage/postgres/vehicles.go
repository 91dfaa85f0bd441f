package postgres

import (
	"context"
	"fmt"

	"github.com/motorpool/motorpool/events"
	pgdb "github.com/motorpool/motorpool/sqlc/postgres"
	"github.com/motorpool/motorpool/storage"
)

// CreateVehicle implements storage.Store.
func (s *Store) CreateVehicle(ctx context.Context, v storage.NewVehicle) (storage.Vehicle, error) {
	var row pgdb.Vehicle
	err := s.inTx(ctx, "create vehicle", func(q *txn) error {
		var err error
		row, err = q.CreateVehicle(ctx, pgdb.CreateVehicleParams{
			UserID:       v.UserID,
			Make:         v.Make,
			Model:        v.Model,
			Year:         v.Year,
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
	n, err := limit(p)
	if err != nil {
		return nil, fmt.Errorf("list vehicles: %w", err)
	}
	var rows []pgdb.Vehicle
	if f.UserID != nil {
		rows, err = s.q.ListVehiclesByUser(ctx, pgdb.ListVehiclesByUserParams{
			UserID: *f.UserID, AfterID: p.AfterID, MaxRows: n,
		})
	} else {
		rows, err = s.q.ListVehicles(ctx, pgdb.ListVehiclesParams{AfterID: p.AfterID, MaxRows: n})
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
	var row pgdb.UpdateVehicleRow
	err := s.inTx(ctx, "update vehicle", func(q *txn) error {
		var err error
		row, err = q.UpdateVehicle(ctx, pgdb.UpdateVehicleParams{
			ID:           id,
			UserID:       v.UserID,
			Make:         v.Make,
			Model:        v.Model,
			Year:         v.Year,
			Vin:          v.VIN,
			LicensePlate: v.LicensePlate,
			Color:        v.Color,
			UpdatedAt:    storage.Now(),
		})
		if err != nil {
			return translate("update vehicle", err)
		}
		return recordVehicle(ctx, q, events.VehicleUpdated, row.Vehicle, row.PreviousUserID, row.Vehicle.Revision, row.Vehicle.UpdatedAt)
	})
	if err != nil {
		return storage.Vehicle{}, err
	}
	return toVehicle(row.Vehicle), nil
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

func toVehicle(r pgdb.Vehicle) storage.Vehicle {
	return storage.Vehicle{
		ID:           r.ID,
		UserID:       r.UserID,
		Make:         r.Make,
		Model:        r.Model,
		Year:         r.Year,
		VIN:          r.Vin,
		LicensePlate: r.LicensePlate,
		Color:        r.Color,
		CreatedAt:    r.CreatedAt.UTC(),
		UpdatedAt:    r.UpdatedAt.UTC(),
	}
}
