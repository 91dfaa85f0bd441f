package deadline

import (
	"context"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// Projection is a storage.UserProjection whose calls are each bounded by a timeout.
type Projection struct {
	next    storage.UserProjection
	timeout time.Duration
}

var _ storage.UserProjection = (*Projection)(nil)

// WrapProjection bounds each call to next by timeout; a timeout of zero or less returns next
// unchanged.
func WrapProjection(next storage.UserProjection, timeout time.Duration) storage.UserProjection {
	if timeout <= 0 {
		return next
	}
	return &Projection{next: next, timeout: timeout}
}

// KnownUser implements storage.UserProjection.
func (p *Projection) KnownUser(ctx context.Context, id int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	return p.next.KnownUser(ctx, id)
}

// UserDeleted implements storage.UserProjection.
func (p *Projection) UserDeleted(ctx context.Context, id int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	return p.next.UserDeleted(ctx, id)
}

// ApplyUserCreated implements storage.UserProjection.
func (p *Projection) ApplyUserCreated(ctx context.Context, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	return p.next.ApplyUserCreated(ctx, id)
}

// ApplyUserDeleted implements storage.UserProjection.
func (p *Projection) ApplyUserDeleted(ctx context.Context, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	return p.next.ApplyUserDeleted(ctx, id)
}
