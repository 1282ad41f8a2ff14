// Command flowgen sends synthetic NetFlow v5, NetFlow v9, IPFIX or sFlow v5
// datagrams to a collector at a paced rate and prints a JSON summary
// (records, datagrams, seconds, achieved rate) when done. It sends only to
// loopback addresses unless -allow-remote is given.
//
//	flowgen -proto v9 -to 127.0.0.1:2055 -rate 300000 -duration 10s
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/flowsentry/flowsentry/gen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// summary is the JSON line printed at the end.
type summary struct {
	Proto string `json:"proto"`
	To    string `json:"to"`
	gen.Summary
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flowgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	proto := fs.String("proto", "v9", "export protocol: v5, v9, ipfix or sflow")
	to := fs.String("to", "127.0.0.1:2055", "collector address host:port")
	rate := fs.Float64("rate", 0, "records per second, paced by a sleeping token bucket; 0 sends as fast as possible")
	records := fs.Int64("records", 0, "records to send in total (whole datagrams); 0 means no limit")
	duration := fs.Duration("duration", 0, "how long to send; 0 means no limit")
	perDatagram := fs.Int("per-datagram", 0, "records per datagram (sFlow: samples); 0 means 30 (sFlow 10)")
	hosts := fs.Int("hosts", 100, "distinct source addresses")
	remotes := fs.Int("remotes", 1000, "distinct destination addresses")
	src := fs.String("src", "", "prefix of the source addresses (default 10.0.0.0/16)")
	dst := fs.String("dst", "", "prefix of the destination addresses (default 198.18.0.0/15)")
	sampling := fs.Uint("sampling", 1, "1-in-N sampling rate announced")
	refresh := fs.Int("refresh", 20, "send templates (sFlow: counter samples) every N datagrams")
	seed := fs.Uint64("seed", 1, "random seed: the same seed sends the same records")
	allowRemote := fs.Bool("allow-remote", false, "allow a destination outside 127.0.0.0/8 and ::1")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "flowgen: unexpected argument %q; every setting is a flag (flowgen -h)\n", fs.Arg(0))
		return 2
	}
	if *records == 0 && *duration == 0 {
		fmt.Fprintln(stderr, "flowgen: neither -records nor -duration is set; give one so that the run ends")
		return 2
	}
	p, err := gen.ParseProtocol(*proto)
	if err != nil {
		fmt.Fprintf(stderr, "flowgen: -proto: %v\n", err)
		return 2
	}
	cfg := gen.Config{
		Protocol:     p,
		Records:      *perDatagram,
		SrcAddrs:     *hosts,
		DstAddrs:     *remotes,
		SamplingRate: uint32(*sampling),
		RefreshEvery: *refresh,
		Seed:         *seed,
	}
	for _, pf := range []struct {
		flag, value string
		dst         *netip.Prefix
	}{{"-src", *src, &cfg.SrcPrefix}, {"-dst", *dst, &cfg.DstPrefix}} {
		if pf.value == "" {
			continue
		}
		if *pf.dst, err = netip.ParsePrefix(pf.value); err != nil {
			fmt.Fprintf(stderr, "flowgen: %s %q is not a prefix; write e.g. 10.0.0.0/16 or 2001:db8::/64\n", pf.flag, pf.value)
			return 2
		}
	}
	conn, err := dial(*to, *allowRemote)
	if err != nil {
		fmt.Fprintf(stderr, "flowgen: %v\n", err)
		return 2
	}
	defer conn.Close()
	// The exporter the collector sees is the UDP source: say so in sFlow too.
	cfg.Exporter = conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	g, err := gen.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "flowgen: %v\n", err)
		return 2
	}
	s := gen.Send(ctx, conn, g, gen.SendConfig{Rate: *rate, Records: *records, Duration: *duration})
	out, err := json.Marshal(summary{Proto: p.String(), To: conn.RemoteAddr().String(), Summary: s})
	if err != nil {
		fmt.Fprintf(stderr, "flowgen: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, string(out))
	return 0
}

// dial opens a UDP socket to address, refusing destinations that are not
// loopback unless allowRemote.
func dial(address string, allowRemote bool) (*net.UDPConn, error) {
	to, err := net.ResolveUDPAddr("udp", address)
	if err != nil {
		return nil, fmt.Errorf("-to %q: %w; write host:port, e.g. 127.0.0.1:2055", address, err)
	}
	if !allowRemote && !to.IP.IsLoopback() {
		return nil, errors.New("-to " + address + " is not a loopback address (127.0.0.0/8 or ::1); flowgen floods its destination, so add -allow-remote if that is intended")
	}
	conn, err := net.DialUDP("udp", nil, to)
	if err != nil {
		return nil, fmt.Errorf("-to %s: %w", address, err)
	}
	return conn, nil
}
