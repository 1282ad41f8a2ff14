//go:build amd64 || arm64

package exfil

// prefetch asks the processor to bring buckets p and q (a cache line each) into
// its caches, and returns at once.
//
//go:noescape
func prefetch(p, q *bucket)
