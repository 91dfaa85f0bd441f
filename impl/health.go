package impl

import (
	"context"
	"sync"

	"github.com/motorpool/motorpool/gen"
)

// GetHealthz answers while the process serves HTTP; it checks no backend on purpose, so that
// an orchestrator does not restart instances because a shared database is down.
func (s *Server) GetHealthz(context.Context, gen.GetHealthzRequestObject) (gen.GetHealthzResponseObject, error) {
	return gen.GetHealthz200JSONResponse{Status: gen.HealthStatusOk, Checks: map[string]gen.Check{}}, nil
}

// GetReadyz pings every backend concurrently, each within the check timeout, and answers 503
// naming those that failed. The probe is public, so why one failed goes to the log only: a
// driver's error names the host, the port, the database and its user.
func (s *Server) GetReadyz(ctx context.Context, _ gen.GetReadyzRequestObject) (gen.GetReadyzResponseObject, error) {
	ctx, cancel := context.WithTimeout(ctx, s.checkTimeout)
	defer cancel()
	results := make([]gen.Check, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		wg.Go(func() {
			if err := c.Ping(ctx); err != nil {
				s.log.WarnContext(ctx, "readiness check failed", "backend", c.Name, "error", err.Error())
				results[i] = gen.Check{Status: gen.CheckStatusUnavailable}
				return
			}
			results[i] = gen.Check{Status: gen.CheckStatusOk}
		})
	}
	wg.Wait()
	h := gen.Health{Status: gen.HealthStatusOk, Checks: make(map[string]gen.Check, len(results))}
	for i, r := range results {
		h.Checks[s.checks[i].Name] = r
		if r.Status != gen.CheckStatusOk {
			h.Status = gen.HealthStatusUnavailable
		}
	}
	if h.Status != gen.HealthStatusOk {
		return gen.GetReadyz503JSONResponse(h), nil
	}
	return gen.GetReadyz200JSONResponse(h), nil
}
