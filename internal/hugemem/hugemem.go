// Package hugemem allocates the large, pointer-free tables of the detectors
// (hash tables of sessions, sketches, pair sets) on transparent huge pages.
//
// A lookup in a table of many megabytes misses the cache, and, on 4 KiB
// pages, the TLB too; under virtualisation the TLB miss (a two-level page
// walk) costs about as much as the cache miss itself. Where transparent
// huge pages are "madvise" (Debian's default), the Go heap gets none, so
// Make maps tables of a huge page or more outside the Go heap, aligned on
// huge pages and marked MADV_HUGEPAGE. Elsewhere, and for small tables, it
// falls back to make.
package hugemem

import (
	"fmt"
	"reflect"
	"runtime"
	"unsafe"
)

// PageSize is the size of a transparent huge page on amd64 and arm64 (with
// 4 KiB base pages).
const PageSize = 2 << 20

// Table is a slice allocated by Make. Free releases its memory at once;
// otherwise it is released when the Table becomes garbage.
type Table[T any] struct {
	// S is the table's elements, zeroed by Make. Do not keep S, or a
	// slice or pointer into it, past Free or beyond the Table's life.
	S   []T
	mem *mapping
}

// mapping is the memory of a Table mapped outside the Go heap.
type mapping struct{ whole []byte }

func (m *mapping) unmap() {
	if m.whole != nil {
		unmap(m.whole)
		m.whole = nil
	}
}

// Make returns a table of n zeroed elements. T must hold no pointers (the
// garbage collector does not see memory outside its heap): Make panics
// otherwise.
func Make[T any](n int) *Table[T] {
	if t := reflect.TypeFor[T](); hasPointers(t) {
		panic(fmt.Sprintf("hugemem: %v holds pointers", t))
	}
	size := n * int(unsafe.Sizeof(*new(T)))
	if size < PageSize {
		return &Table[T]{S: make([]T, n)}
	}
	b, whole := mapHuge(size)
	if b == nil {
		return &Table[T]{S: make([]T, n)}
	}
	t := &Table[T]{S: unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n), mem: &mapping{whole: whole}}
	runtime.AddCleanup(t, func(m *mapping) { m.unmap() }, t.mem)
	return t
}

// OffHeap returns the bytes of t mapped outside the Go heap.
func (t *Table[T]) OffHeap() int {
	if t == nil || t.mem == nil || t.mem.whole == nil {
		return 0
	}
	return len(t.S) * int(unsafe.Sizeof(*new(T)))
}

// Free releases t's memory; t.S is nil afterwards.
func (t *Table[T]) Free() {
	if t == nil {
		return
	}
	t.S = nil
	if t.mem != nil {
		t.mem.unmap()
	}
}

// hasPointers reports whether values of t hold pointers.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	}
	return true
}
