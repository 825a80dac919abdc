package statecache

// Queued is the number of callers waiting in g.
func Queued(g *Group) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}
