package memory

// Len reports how many entries are stored, expired or not, so tests can see the sweeps.
func (a *AuthState) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.entries()
}
