package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	to := sink.LocalAddr().String()
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout when code is 0, in stderr otherwise
	}{
		{"sends and sums up", []string{"-proto", "ipfix", "-to", to, "-records", "100", "-per-datagram", "10"}, 0, `"records":100,"datagrams":10`},
		{"sflow paced", []string{"-proto", "sflow", "-to", to, "-records", "50", "-rate", "5000"}, 0, `"proto":"sflow"`},
		{"refuses a remote destination", []string{"-to", "192.0.2.1:2055", "-records", "1"}, 2, "not a loopback address"},
		{"needs an end", []string{"-to", to}, 2, "neither -records nor -duration"},
		{"unknown protocol", []string{"-proto", "v8", "-to", to, "-records", "1"}, 2, "use v5, v9, ipfix or sflow"},
		{"bad prefix", []string{"-src", "10.0.0.0", "-to", to, "-records", "1"}, 2, `-src "10.0.0.0" is not a prefix`},
		{"v5 and ipv6", []string{"-proto", "v5", "-src", "2001:db8::/64", "-dst", "2001:db8:1::/64", "-to", to, "-records", "1"}, 2, "NetFlow v5 carries only IPv4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			got := stderr.String()
			if code == 0 {
				got = stdout.String()
				var s summary
				if err := json.Unmarshal(stdout.Bytes(), &s); err != nil || s.Records == 0 || s.Rate <= 0 || s.To != to {
					t.Errorf("summary %s does not parse into a run to %s: %v", stdout.String(), to, err)
				}
			}
			if !strings.Contains(got, tt.out) {
				t.Errorf("output %q does not contain %q", got, tt.out)
			}
		})
	}
}
