package hugemem

import (
	"runtime"
	"testing"
	"unsafe"
)

type pair struct {
	a uint64
	b [3]uint32
}

func TestMake(t *testing.T) {
	small := Make[pair](16)
	if len(small.S) != 16 || small.OffHeap() != 0 {
		t.Fatalf("small table: %d elements, %d bytes off the heap; want 16 on the heap", len(small.S), small.OffHeap())
	}
	n := 3 * PageSize / int(unsafe.Sizeof(pair{}))
	big := Make[pair](n)
	if len(big.S) != n {
		t.Fatalf("%d elements, want %d", len(big.S), n)
	}
	if runtime.GOOS == "linux" {
		if got, want := big.OffHeap(), n*int(unsafe.Sizeof(pair{})); got != want {
			t.Errorf("OffHeap %d, want %d", got, want)
		}
		if p := uintptr(unsafe.Pointer(&big.S[0])); p%PageSize != 0 {
			t.Errorf("table at %#x: not aligned on a huge page", p)
		}
	}
	for i := range big.S {
		if big.S[i] != (pair{}) {
			t.Fatalf("element %d not zero", i)
		}
		big.S[i] = pair{a: uint64(i)}
	}
	if big.S[n-1].a != uint64(n-1) {
		t.Fatal("last element not written")
	}
	big.Free()
	big.Free() // idempotent
	if big.S != nil || big.OffHeap() != 0 {
		t.Fatal("freed table still has its memory")
	}
	var none *Table[pair]
	none.Free()
}

func TestMakeRefusesPointers(t *testing.T) {
	for name, mk := range map[string]func(){
		"pointer":         func() { Make[*int](1) },
		"slice in struct": func() { Make[struct{ s []byte }](1) },
		"string in array": func() { Make[[2]string](1) },
		"map":             func() { Make[map[int]int](1) },
		"interface":       func() { Make[any](1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			mk()
		}()
	}
}
