package valkey

// BatchQueued is how many of l's token-bucket requests are waiting for a batch.
func BatchQueued(l *Limiter) int {
	l.batch.mu.Lock()
	defer l.batch.mu.Unlock()
	return len(l.batch.queue)
}
