package impl

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/motorpool/motorpool/gen"
	"github.com/motorpool/motorpool/storage"
)

func toUser(u storage.User) gen.User {
	return gen.User{
		Id:        u.ID,
		Email:     openapi_types.Email(u.Email),
		Name:      u.Name,
		Role:      gen.Role(u.Role),
		CreatedAt: u.CreatedAt,
		UpdatedAt: u.UpdatedAt,
	}
}

func toUsers(us []storage.User) []gen.User {
	out := make([]gen.User, len(us))
	for i, u := range us {
		out[i] = toUser(u)
	}
	return out
}

// CreateUser registers a user with role "user".
func (s *Server) CreateUser(ctx context.Context, req gen.CreateUserRequestObject) (gen.CreateUserResponseObject, error) {
	hash, err := s.hasher.Hash(ctx, req.Body.Password)
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	u, err := s.store.CreateUser(ctx, storage.NewUser{
		Email:        string(req.Body.Email),
		Name:         req.Body.Name,
		Role:         storage.RoleUser,
		PasswordHash: hash,
	})
	if err != nil {
		if p, ok := fieldProblem(err); ok && p.Status == http.StatusConflict {
			return gen.CreateUser409ApplicationProblemPlusJSONResponse{ConflictApplicationProblemPlusJSONResponse: gen.ConflictApplicationProblemPlusJSONResponse(p)}, nil
		}
		return nil, fmt.Errorf("create user: %w", err)
	}
	return gen.CreateUser201JSONResponse{
		Body:    toUser(u),
		Headers: gen.CreateUser201ResponseHeaders{Location: fmt.Sprintf("/users/%d", u.ID)},
	}, nil
}

// ListUsers lists users a page at a time, or finds the one user with an email.
func (s *Server) ListUsers(ctx context.Context, req gen.ListUsersRequestObject) (gen.ListUsersResponseObject, error) {
	after, err := decodeCursor(kindUsers, req.Params.Cursor)
	if err != nil {
		return gen.ListUsers400ApplicationProblemPlusJSONResponse{BadRequestApplicationProblemPlusJSONResponse: gen.BadRequestApplicationProblemPlusJSONResponse(badRequest("cursor", err.Error()))}, nil
	}
	if req.Params.Email != nil {
		items := []gen.User{}
		u, err := s.store.GetUserByEmail(ctx, string(*req.Params.Email))
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("list users by email: %w", err)
		case u.ID > after:
			items = append(items, toUser(u))
		}
		return gen.ListUsers200JSONResponse(gen.UserPage{Items: items}), nil
	}
	limit := pageSize(req.Params.Limit)
	us, err := s.store.ListUsers(ctx, storage.Page{AfterID: after, Limit: limit + 1})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	us, next := page(us, limit, kindUsers, func(u storage.User) int64 { return u.ID })
	return gen.ListUsers200JSONResponse(gen.UserPage{Items: toUsers(us), NextCursor: next}), nil
}

// GetUser returns one user.
func (s *Server) GetUser(ctx context.Context, req gen.GetUserRequestObject) (gen.GetUserResponseObject, error) {
	u, err := s.store.GetUser(ctx, req.Id)
	if errors.Is(err, storage.ErrNotFound) {
		return gen.GetUser404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: gen.NotFoundApplicationProblemPlusJSONResponse(notFound("user", req.Id))}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	return gen.GetUser200JSONResponse(toUser(u)), nil
}

// UpdateUser replaces a user's email and name, and their password or role when given. Only
// an admin may change a role. A password or role change ends every session of the user.
func (s *Server) UpdateUser(ctx context.Context, req gen.UpdateUserRequestObject) (gen.UpdateUserResponseObject, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	upd := storage.UserUpdate{Email: string(req.Body.Email), Name: req.Body.Name}
	roleChanged := false
	if r := req.Body.Role; r != nil {
		// Only admins reach other users (the route's rule), so a non-admin here is the user
		// themself: naming their own role is a no-op, anything else is forbidden.
		if !c.IsAdmin() {
			if storage.Role(*r) != c.Role {
				return gen.UpdateUser403ApplicationProblemPlusJSONResponse{ForbiddenApplicationProblemPlusJSONResponse: gen.ForbiddenApplicationProblemPlusJSONResponse(forbidden("Only an admin may change a role."))}, nil
			}
		} else {
			cur, err := s.store.GetUser(ctx, req.Id)
			if errors.Is(err, storage.ErrNotFound) {
				return gen.UpdateUser404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: gen.NotFoundApplicationProblemPlusJSONResponse(notFound("user", req.Id))}, nil
			}
			if err != nil {
				return nil, fmt.Errorf("update user: %w", err)
			}
			if role := storage.Role(*r); role != cur.Role {
				upd.Role, roleChanged = &role, true
			}
		}
	}
	if req.Body.Password != nil {
		hash, err := s.hasher.Hash(ctx, *req.Body.Password)
		if err != nil {
			return nil, fmt.Errorf("update user: %w", err)
		}
		upd.PasswordHash = &hash
	}
	u, err := s.store.UpdateUser(ctx, req.Id, upd)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return gen.UpdateUser404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: gen.NotFoundApplicationProblemPlusJSONResponse(notFound("user", req.Id))}, nil
	case errors.Is(err, storage.ErrLastAdmin):
		return gen.UpdateUser409ApplicationProblemPlusJSONResponse{ConflictApplicationProblemPlusJSONResponse: gen.ConflictApplicationProblemPlusJSONResponse(
			problem(http.StatusConflict, "The last admin cannot be demoted.", gen.FieldError{Field: "role", Message: "would leave no admin"}))}, nil
	case err != nil:
		if p, ok := fieldProblem(err); ok && p.Status == http.StatusConflict {
			return gen.UpdateUser409ApplicationProblemPlusJSONResponse{ConflictApplicationProblemPlusJSONResponse: gen.ConflictApplicationProblemPlusJSONResponse(p)}, nil
		}
		return nil, fmt.Errorf("update user: %w", err)
	}
	if roleChanged || upd.PasswordHash != nil {
		reason := "password_change"
		if roleChanged {
			reason = "role_change"
		}
		// The change is committed; if the sessions cannot be ended the client gets a 503 and
		// repeats the (idempotent) PUT.
		if err := s.auth.EndAllSessions(ctx, u.ID, reason); err != nil {
			return nil, fmt.Errorf("update user: %w", err)
		}
	}
	return gen.UpdateUser200JSONResponse(toUser(u)), nil
}

// DeleteUser deletes a user, their vehicles and their sessions.
func (s *Server) DeleteUser(ctx context.Context, req gen.DeleteUserRequestObject) (gen.DeleteUserResponseObject, error) {
	err := s.store.DeleteUser(ctx, req.Id)
	if errors.Is(err, storage.ErrLastAdmin) {
		return gen.DeleteUser409ApplicationProblemPlusJSONResponse{ConflictApplicationProblemPlusJSONResponse: gen.ConflictApplicationProblemPlusJSONResponse(problem(http.StatusConflict, "The last admin cannot be deleted."))}, nil
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("delete user: %w", err)
	}
	// Sessions end after the commit, and on a 404 too: if the session store was down when the
	// user was deleted (503), the client's retry gets 404 and still ends them.
	if err := s.auth.EndAllSessions(ctx, req.Id, "user_deleted"); err != nil {
		return nil, fmt.Errorf("delete user: %w", err)
	}
	if err != nil {
		return gen.DeleteUser404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: gen.NotFoundApplicationProblemPlusJSONResponse(notFound("user", req.Id))}, nil
	}
	return gen.DeleteUser204Response{}, nil
}

// ListUserVehicles lists one user's vehicles; 404 when the user does not exist.
func (s *Server) ListUserVehicles(ctx context.Context, req gen.ListUserVehiclesRequestObject) (gen.ListUserVehiclesResponseObject, error) {
	after, err := decodeCursor(kindVehicles, req.Params.Cursor)
	if err != nil {
		return gen.ListUserVehicles400ApplicationProblemPlusJSONResponse{BadRequestApplicationProblemPlusJSONResponse: gen.BadRequestApplicationProblemPlusJSONResponse(badRequest("cursor", err.Error()))}, nil
	}
	body, err := s.vehiclePage(ctx, &req.Id, after, pageSize(req.Params.Limit))
	if err != nil {
		return nil, fmt.Errorf("list user vehicles: %w", err)
	}
	// A vehicle proves its owner exists (vehicles cascade-delete with the user): only an empty
	// page needs the owners asked to tell a 404 from an empty list. They, not the users table,
	// answer, for on a database of its own the vehicles domain has no users table to read.
	if len(body.Items) == 0 {
		if known, err := s.owners.KnownUser(ctx, req.Id); err != nil {
			return nil, fmt.Errorf("list user vehicles: %w", err)
		} else if !known {
			return gen.ListUserVehicles404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: gen.NotFoundApplicationProblemPlusJSONResponse(notFound("user", req.Id))}, nil
		}
	}
	return gen.ListUserVehicles200JSONResponse(body), nil
}
