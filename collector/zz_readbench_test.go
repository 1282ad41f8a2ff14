package collector

import (
	"net"
	"testing"

	"golang.org/x/net/ipv4"
)

const fillN = 10000

func fill(b *testing.B, conn *net.UDPConn, to net.Addr, payload []byte) {
	for range fillN {
		if _, err := conn.WriteTo(payload, to); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadMsg(b *testing.B) {
	rc, _, err := listen("127.0.0.1:0", 64<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	sc, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer sc.Close()
	payload := make([]byte, 1284)
	buf := make([]byte, 65536)
	oob := make([]byte, oobSize)
	b.ReportAllocs()
	b.StopTimer()
	for i := 0; i < b.N; i += fillN {
		fill(b, sc, rc.LocalAddr(), payload)
		b.StartTimer()
		for range fillN {
			if _, _, _, _, err := rc.ReadMsgUDPAddrPort(buf, oob); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64((b.N+fillN-1)/fillN*fillN), "ns/datagram")
}

func BenchmarkReadBatch(b *testing.B) {
	rc, _, err := listen("127.0.0.1:0", 64<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	sc, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer sc.Close()
	payload := make([]byte, 1284)
	pc := ipv4.NewPacketConn(rc)
	msgs := make([]ipv4.Message, 32)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 65536)}
		msgs[i].OOB = make([]byte, oobSize)
	}
	b.ReportAllocs()
	b.StopTimer()
	for i := 0; i < b.N; i += fillN {
		fill(b, sc, rc.LocalAddr(), payload)
		b.StartTimer()
		for got := 0; got < fillN; {
			n, err := pc.ReadBatch(msgs, 0)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
		b.StopTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64((b.N+fillN-1)/fillN*fillN), "ns/datagram")
}
