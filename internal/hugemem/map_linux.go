//go:build linux

package hugemem

import (
	"syscall"
	"unsafe"
)

// mapHuge maps size bytes aligned on a huge page and marked for
// transparent huge pages: the aligned bytes, and the whole mapping for
// unmap; nil when the mapping fails.
func mapHuge(size int) (aligned, whole []byte) {
	b, err := syscall.Mmap(-1, 0, size+PageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil
	}
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (PageSize - 1))
	_ = syscall.Madvise(b[off:off+size], syscall.MADV_HUGEPAGE) // without, the table works on small pages
	return b[off : off+size : off+size], b
}

// unmap releases a mapping of mapHuge.
func unmap(whole []byte) { _ = syscall.Munmap(whole) }
