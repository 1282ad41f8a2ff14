// Package prefetch asks the processor for memory before it is read, so
// that the record paths of the detectors, which look up tables far larger
// than the caches, wait for one cache miss at a time less often. It is
// written in assembly on amd64 and arm64 (PREFETCHT0, PRFM PLDL1KEEP) and
// does nothing elsewhere.
package prefetch
