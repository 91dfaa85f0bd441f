package memory

// Len reports how many entries are stored, expired or not, so tests can see the sweeps.
func (a *AuthState) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.entries()
}

// Len reports how many buckets are stored, expired or not yet swept, so tests can see the
// sweeps.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Len reports how many entries (values and versions) are kept, expired or not.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
