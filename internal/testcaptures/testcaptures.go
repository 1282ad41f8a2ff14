// Package testcaptures finds the shared packet captures the tests replay:
// the folder shared/captures beside the repository (CI clones the
// repository to X/main with the captures at X/shared/captures).
package testcaptures

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Dir returns the captures folder, walking up from the working directory;
// the test fails when there is none.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "captures")
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("shared/captures not found in any parent of the working directory: clone the repository next to the shared folder (X/main and X/shared)")
		}
		dir = parent
	}
}

// Path returns the path of a capture given relative to the folder, e.g.
// "attacks/ddos/pkt.TCP.synflood.spoofed.pcap".
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	return filepath.Join(Dir(tb), rel)
}

// Frames returns every frame of a pcap or pcapng capture named relative to
// the folder, with its link type; the test fails on a read error.
func Frames(tb testing.TB, rel string) (frames [][]byte, link layers.LinkType) {
	tb.Helper()
	f, err := os.Open(Path(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
		LinkType() layers.LinkType
	}
	if r, err := pcapgo.NewReader(f); err == nil {
		src = r
	} else {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			tb.Fatal(err)
		}
		if src, err = pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions); err != nil {
			tb.Fatalf("%s: neither pcap nor pcapng: %v", rel, err)
		}
	}
	for {
		frame, _, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return frames, src.LinkType()
		}
		if err != nil {
			tb.Fatalf("%s: %v", rel, err)
		}
		frames = append(frames, frame)
	}
}
