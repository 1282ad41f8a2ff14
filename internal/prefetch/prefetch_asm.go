//go:build amd64 || arm64

package prefetch

import "unsafe"

// Lines asks the processor to bring the cache lines at p and q into its
// caches, and returns at once: a caller that will read two places of a
// table too large for the caches asks for them some work ahead. For one
// line, give it twice.
//
//go:noescape
func Lines(p, q unsafe.Pointer)
