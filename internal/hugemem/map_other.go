//go:build !linux

package hugemem

// mapHuge maps nothing: tables come from the Go heap.
func mapHuge(int) (aligned, whole []byte) { return nil, nil }

// unmap is never called.
func unmap([]byte) {}
