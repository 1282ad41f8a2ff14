//go:build linux

package exfil

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page.
const hugePage = 2 << 20

// allocSlots returns n zeroed slots. From a huge page up, they are mapped
// outside the Go heap, aligned on huge pages and marked for transparent
// huge pages (MADV_HUGEPAGE: the Go heap is not, where THP is "madvise"):
// a lookup then costs no TLB miss, which under virtualisation costs as
// much as the cache miss itself. release unmaps them; nil for slots of
// the heap.
func allocSlots(n int) (slots []slot, release func()) {
	size := n * int(unsafe.Sizeof(slot{}))
	if size < hugePage {
		return make([]slot, n), nil
	}
	b, err := syscall.Mmap(-1, 0, size+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]slot, n), nil
	}
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (hugePage - 1))
	_ = syscall.Madvise(b[off:off+size], syscall.MADV_HUGEPAGE) // without, the table works on small pages
	return unsafe.Slice((*slot)(unsafe.Pointer(&b[off])), n), func() { _ = syscall.Munmap(b) }
}
