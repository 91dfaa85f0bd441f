package impl

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/gen"
	"github.com/motorpool/motorpool/storage"
)

// oldestYear is the year of the first production automobile (Benz Patent-Motorwagen).
const oldestYear = 1886

func toVehicle(v storage.Vehicle) gen.Vehicle {
	return gen.Vehicle{
		Id:           v.ID,
		UserId:       v.UserID,
		Make:         v.Make,
		Model:        v.Model,
		Year:         v.Year,
		Vin:          v.VIN,
		LicensePlate: v.LicensePlate,
		Color:        v.Color,
		CreatedAt:    v.CreatedAt,
		UpdatedAt:    v.UpdatedAt,
	}
}

// checkYear enforces the upper bound of a model year, which the static contract cannot state:
// next year's models are on sale, later ones are not.
func (s *Server) checkYear(year int32) *gen.Problem {
	newest := int32(s.now().Year() + 1)
	if year < oldestYear || year > newest {
		p := badRequest("year", fmt.Sprintf("must be from %d to %d", oldestYear, newest))
		return &p
	}
	return nil
}

func (s *Server) vehiclePage(ctx context.Context, userID *int64, after int64, limit int) (gen.VehiclePage, error) {
	vs, err := s.store.ListVehicles(ctx, storage.VehicleFilter{UserID: userID}, storage.Page{AfterID: after, Limit: limit + 1})
	if err != nil {
		return gen.VehiclePage{}, err
	}
	vs, next := page(vs, limit, kindVehicles, func(v storage.Vehicle) int64 { return v.ID })
	items := make([]gen.Vehicle, len(vs))
	for i, v := range vs {
		items[i] = toVehicle(v)
	}
	return gen.VehiclePage{Items: items, NextCursor: next}, nil
}

// ListVehicles lists vehicles a page at a time, optionally those of one owner.
func (s *Server) ListVehicles(ctx context.Context, req gen.ListVehiclesRequestObject) (gen.ListVehiclesResponseObject, error) {
	after, err := decodeCursor(kindVehicles, req.Params.Cursor)
	if err != nil {
		return gen.ListVehicles400ApplicationProblemPlusJSONResponse{BadRequestApplicationProblemPlusJSONResponse: gen.BadRequestApplicationProblemPlusJSONResponse(badRequest("cursor", err.Error()))}, nil
	}
	body, err := s.vehiclePage(ctx, req.Params.UserId, after, pageSize(req.Params.Limit))
	if err != nil {
		return nil, fmt.Errorf("list vehicles: %w", err)
	}
	return gen.ListVehicles200JSONResponse(body), nil
}

// CreateVehicle registers a vehicle for the caller, or for another user when an admin says so.
func (s *Server) CreateVehicle(ctx context.Context, req gen.CreateVehicleRequestObject) (gen.CreateVehicleResponseObject, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	b := req.Body
	if p := s.checkYear(b.Year); p != nil {
		return gen.CreateVehicle400ApplicationProblemPlusJSONResponse{BadRequestApplicationProblemPlusJSONResponse: gen.BadRequestApplicationProblemPlusJSONResponse(*p)}, nil
	}
	owner := c.UserID
	if b.UserId != nil && *b.UserId != c.UserID {
		if !c.IsAdmin() {
			return gen.CreateVehicle403ApplicationProblemPlusJSONResponse{ForbiddenApplicationProblemPlusJSONResponse: gen.ForbiddenApplicationProblemPlusJSONResponse(forbidden("Only an admin may register a vehicle for another user."))}, nil
		}
		owner = *b.UserId
	}
	v, err := s.store.CreateVehicle(ctx, storage.NewVehicle{
		UserID: owner, Make: b.Make, Model: b.Model, Year: b.Year, VIN: b.Vin,
		LicensePlate: b.LicensePlate, Color: b.Color,
	})
	if err != nil {
		if p, ok := fieldProblem(err); ok {
			if p.Status == http.StatusConflict {
				return gen.CreateVehicle409ApplicationProblemPlusJSONResponse{ConflictApplicationProblemPlusJSONResponse: gen.ConflictApplicationProblemPlusJSONResponse(p)}, nil
			}
			return gen.CreateVehicle422ApplicationProblemPlusJSONResponse{UnprocessableEntityApplicationProblemPlusJSONResponse: gen.UnprocessableEntityApplicationProblemPlusJSONResponse(p)}, nil
		}
		return nil, fmt.Errorf("create vehicle: %w", err)
	}
	return gen.CreateVehicle201JSONResponse{
		Body:    toVehicle(v),
		Headers: gen.CreateVehicle201ResponseHeaders{Location: fmt.Sprintf("/vehicles/%d", v.ID)},
	}, nil
}

// GetVehicle returns one vehicle.
func (s *Server) GetVehicle(ctx context.Context, req gen.GetVehicleRequestObject) (gen.GetVehicleResponseObject, error) {
	v, err := s.store.GetVehicle(ctx, req.Id)
	if errors.Is(err, storage.ErrNotFound) {
		return gen.GetVehicle404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: gen.NotFoundApplicationProblemPlusJSONResponse(notFound("vehicle", req.Id))}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get vehicle: %w", err)
	}
	return gen.GetVehicle200JSONResponse(toVehicle(v)), nil
}

// ownerCheck loads a vehicle and says whether the caller may change it: its owner or an admin.
// It returns the vehicle, or a problem (404, 403) to answer with.
func (s *Server) ownerCheck(ctx context.Context, id int64) (storage.Vehicle, *gen.Problem, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return storage.Vehicle{}, nil, err
	}
	v, err := s.store.GetVehicle(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		p := notFound("vehicle", id)
		return storage.Vehicle{}, &p, nil
	}
	if err != nil {
		return storage.Vehicle{}, nil, err
	}
	if v.UserID != c.UserID && !c.IsAdmin() {
		p := forbidden("Only the vehicle's owner or an admin may change it.")
		return storage.Vehicle{}, &p, nil
	}
	return v, nil, nil
}

// UpdateVehicle replaces a vehicle's fields; an absent userId keeps the owner. Only the owner
// or an admin may update it, and only an admin may give it to another user.
func (s *Server) UpdateVehicle(ctx context.Context, req gen.UpdateVehicleRequestObject) (gen.UpdateVehicleResponseObject, error) {
	b := req.Body
	if p := s.checkYear(b.Year); p != nil {
		return gen.UpdateVehicle400ApplicationProblemPlusJSONResponse{BadRequestApplicationProblemPlusJSONResponse: gen.BadRequestApplicationProblemPlusJSONResponse(*p)}, nil
	}
	cur, p, err := s.ownerCheck(ctx, req.Id)
	if err != nil {
		return nil, fmt.Errorf("update vehicle: %w", err)
	}
	if p != nil {
		if p.Status == http.StatusNotFound {
			return gen.UpdateVehicle404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: gen.NotFoundApplicationProblemPlusJSONResponse(*p)}, nil
		}
		return gen.UpdateVehicle403ApplicationProblemPlusJSONResponse{ForbiddenApplicationProblemPlusJSONResponse: gen.ForbiddenApplicationProblemPlusJSONResponse(*p)}, nil
	}
	if c, _ := auth.CallerFrom(ctx); b.UserId != nil && *b.UserId != cur.UserID && !c.IsAdmin() {
		return gen.UpdateVehicle403ApplicationProblemPlusJSONResponse{ForbiddenApplicationProblemPlusJSONResponse: gen.ForbiddenApplicationProblemPlusJSONResponse(forbidden("Only an admin may give a vehicle to another user."))}, nil
	}
	v, err := s.store.UpdateVehicle(ctx, req.Id, storage.VehicleUpdate{
		UserID: b.UserId, Make: b.Make, Model: b.Model, Year: b.Year, VIN: b.Vin,
		LicensePlate: b.LicensePlate, Color: b.Color,
	})
	if errors.Is(err, storage.ErrNotFound) {
		return gen.UpdateVehicle404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: gen.NotFoundApplicationProblemPlusJSONResponse(notFound("vehicle", req.Id))}, nil
	}
	if err != nil {
		if p, ok := fieldProblem(err); ok {
			if p.Status == http.StatusConflict {
				return gen.UpdateVehicle409ApplicationProblemPlusJSONResponse{ConflictApplicationProblemPlusJSONResponse: gen.ConflictApplicationProblemPlusJSONResponse(p)}, nil
			}
			return gen.UpdateVehicle422ApplicationProblemPlusJSONResponse{UnprocessableEntityApplicationProblemPlusJSONResponse: gen.UnprocessableEntityApplicationProblemPlusJSONResponse(p)}, nil
		}
		return nil, fmt.Errorf("update vehicle: %w", err)
	}
	return gen.UpdateVehicle200JSONResponse(toVehicle(v)), nil
}

// DeleteVehicle deletes a vehicle; only its owner or an admin may.
func (s *Server) DeleteVehicle(ctx context.Context, req gen.DeleteVehicleRequestObject) (gen.DeleteVehicleResponseObject, error) {
	_, p, err := s.ownerCheck(ctx, req.Id)
	if err != nil {
		return nil, fmt.Errorf("delete vehicle: %w", err)
	}
	if p != nil {
		if p.Status == http.StatusNotFound {
			return gen.DeleteVehicle404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: gen.NotFoundApplicationProblemPlusJSONResponse(*p)}, nil
		}
		return gen.DeleteVehicle403ApplicationProblemPlusJSONResponse{ForbiddenApplicationProblemPlusJSONResponse: gen.ForbiddenApplicationProblemPlusJSONResponse(*p)}, nil
	}
	err = s.store.DeleteVehicle(ctx, req.Id)
	if errors.Is(err, storage.ErrNotFound) {
		return gen.DeleteVehicle404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: gen.NotFoundApplicationProblemPlusJSONResponse(notFound("vehicle", req.Id))}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("delete vehicle: %w", err)
	}
	return gen.DeleteVehicle204Response{}, nil
}
