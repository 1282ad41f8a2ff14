package action

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowsentry/flowsentry/alert"
)

func TestEnv(t *testing.T) {
	tgrp := alert.Alert{
		ID: 1004, Policy: 7, Type: "threshold_exceeded", CID: 1, CIDName: "Default", Severity: 5,
		Fields: []alert.Field{
			{Name: "OBJECT_TYPE", Value: "TGRP"},
			{Name: "TGRP", Value: "3", Number: true},
			{Name: "TGRP_NAME", Value: "Web servers"},
			{Name: "THRESHOLD_TYPE", Value: "packets_in"},
			{Name: "THRESHOLD_VALUE", Value: "1000.0", Number: true},
		},
		Earliest: time.Unix(1466615162, 123456789), Latest: time.Unix(1466615282, 5000),
		Peak: alert.Values{PacketsIn: 4361.75, PacketsOut: 12.5, BytesIn: 5234100, BytesOut: 980.333, NewConn: 20.126},
		Avg:  alert.Values{PacketsIn: 3000.004, PacketsOut: 10, BytesIn: 3600000.5, BytesOut: 700, NewConn: 15},
		Cur:  alert.Values{PacketsIn: 2500, PacketsOut: 0, BytesIn: 3000000, BytesOut: 0.005, NewConn: 1},
	}
	common := []string{
		"ID=1004",
		"EARLIEST_UTC=1466615162.123456",
		"LATEST_UTC=1466615282.000005",
		"CID=1",
		"CID_NAME=Default",
		"SEVERITY=5",
		"ALERT_TYPE=threshold_exceeded",
	}
	counters := []string{
		"PEAK_PACKETS_IN=4361.75",
		"PEAK_PACKETS_OUT=12.50",
		"PEAK_BYTES_IN=5234100.00",
		"PEAK_BYTES_OUT=980.33",
		"PEAK_NEW_CONN=20.13",
		"AVG_PACKETS_IN=3000.00",
		"AVG_PACKETS_OUT=10.00",
		"AVG_BYTES_IN=3600000.50",
		"AVG_BYTES_OUT=700.00",
		"AVG_NEW_CONN=15.00",
		"CUR_PACKETS_IN=2500.00",
		"CUR_PACKETS_OUT=0.00",
		"CUR_BYTES_IN=3000000.00",
		"CUR_BYTES_OUT=0.01",
		"CUR_NEW_CONN=1.00",
	}
	tail := []string{
		"TKN=0123456789abcdef0123456789abcdef",
		"AID=7",
		"FLOWSENTRY_URL=http://127.0.0.1:8080",
		"PATH=/opt/flowsentry/bin:/usr/local/bin:/usr/bin:/bin",
	}
	host := tgrp
	host.Uniq = true
	host.Fields = []alert.Field{
		{Name: "OBJECT_TYPE", Value: "TGRP+IP"},
		{Name: "TGRP", Value: "3", Number: true},
		{Name: "TGRP_NAME", Value: "Web servers"},
		{Name: "IP", Value: "2001:db8::7"},
		{Name: "THRESHOLD_TYPE", Value: "uniq_remote_cidr"},
		{Name: "THRESHOLD_VALUE", Value: "250.0", Number: true},
	}
	host.Peak.UniqLocalEndpoint, host.Peak.UniqRemoteCIDR = 3, 812.5
	host.Avg.UniqLocalEndpoint, host.Avg.UniqRemoteCIDR = 1.5, 400
	host.Cur.UniqLocalEndpoint, host.Cur.UniqRemoteCIDR = 2, 300.25
	ddos := alert.Alert{
		ID: 2, Type: "ddos_amp", CID: 4, CIDName: "Tenant B", Severity: 12,
		Fields: []alert.Field{
			{Name: "TARGET_IP", Value: "192.0.2.10"},
			{Name: "TOTAL_SOURCES", Value: "3", Number: true},
			{Name: "SOURCES", IsList: true, List: []string{"198.51.100.0/24", "203.0.113.0/24", "192.0.2.128/25"}},
			{Name: "ADDITIONAL_PORTS", IsList: true},
		},
		Earliest: time.Unix(10, 0), Latest: time.Unix(10, 0),
	}
	zeros := []string{
		"PEAK_PACKETS_IN=0.00", "PEAK_PACKETS_OUT=0.00", "PEAK_BYTES_IN=0.00", "PEAK_BYTES_OUT=0.00", "PEAK_NEW_CONN=0.00",
		"AVG_PACKETS_IN=0.00", "AVG_PACKETS_OUT=0.00", "AVG_BYTES_IN=0.00", "AVG_BYTES_OUT=0.00", "AVG_NEW_CONN=0.00",
		"CUR_PACKETS_IN=0.00", "CUR_PACKETS_OUT=0.00", "CUR_BYTES_IN=0.00", "CUR_BYTES_OUT=0.00", "CUR_NEW_CONN=0.00",
	}

	for _, tc := range []struct {
		name      string
		alert     alert.Alert
		config    map[string]string
		overrides map[string]string
		deps      Deps // URL is http://127.0.0.1:8080
		want      []string
	}{
		{
			name:      "threshold_exceeded TGRP with configuration and an override",
			alert:     tgrp,
			config:    map[string]string{"EMAIL_MAILPORT": "587", "EMAIL_BODY": "instance body", "EMAIL_USERNAME": "ops"},
			overrides: map[string]string{"EMAIL_BODY": "from the policy"},
			deps:      Deps{BinDir: "/opt/flowsentry/bin"},
			want: slices.Concat(common, []string{
				"OBJECT_TYPE=TGRP",
				"TGRP=3",
				"TGRP_NAME=Web servers",
				"THRESHOLD_TYPE=packets_in",
				"THRESHOLD_VALUE=1000.0",
			}, counters, []string{
				"EMAIL_BODY=from the policy",
				"EMAIL_MAILPORT=587",
				"EMAIL_USERNAME=ops",
			}, tail),
		},
		{
			name:  "TGRP+IP with the unique counters after the others",
			alert: host,
			deps:  Deps{BinDir: "/opt/flowsentry/bin"},
			want: slices.Concat(common, []string{
				"OBJECT_TYPE=TGRP+IP",
				"TGRP=3",
				"TGRP_NAME=Web servers",
				"IP=2001:db8::7",
				"THRESHOLD_TYPE=uniq_remote_cidr",
				"THRESHOLD_VALUE=250.0",
			}, counters[:5], []string{
				"PEAK_UNIQ_LOCAL_ENDPOINT=3.00",
				"PEAK_UNIQ_REMOTE_CIDR=812.50",
			}, counters[5:10], []string{
				"AVG_UNIQ_LOCAL_ENDPOINT=1.50",
				"AVG_UNIQ_REMOTE_CIDR=400.00",
			}, counters[10:], []string{
				"CUR_UNIQ_LOCAL_ENDPOINT=2.00",
				"CUR_UNIQ_REMOTE_CIDR=300.25",
			}, tail),
		},
		{
			name:   "lists space-separated; a configuration key named like a contract variable is left out; no ftnbi folder",
			alert:  ddos,
			config: map[string]string{"ID": "overwritten?", "PATH": "/tmp", "MODE": "block"},
			want: slices.Concat([]string{
				"ID=2",
				"EARLIEST_UTC=10.000000",
				"LATEST_UTC=10.000000",
				"CID=4",
				"CID_NAME=Tenant B",
				"SEVERITY=12",
				"ALERT_TYPE=ddos_amp",
				"TARGET_IP=192.0.2.10",
				"TOTAL_SOURCES=3",
				"SOURCES=198.51.100.0/24 203.0.113.0/24 192.0.2.128/25",
				"ADDITIONAL_PORTS=",
			}, zeros, []string{
				"MODE=block",
				"TKN=0123456789abcdef0123456789abcdef",
				"AID=7",
				"FLOWSENTRY_URL=http://127.0.0.1:8080",
				"PATH=/usr/local/bin:/usr/bin:/bin",
			}),
		},
		{
			name:   "HOME, LANG, TZ and the listed variables of the server when set; configuration and contract win",
			alert:  ddos,
			config: map[string]string{"MAIL_RELAY": "from the instance"},
			deps: Deps{CAFile: "/etc/flowsentry/cert.pem", Env: []string{"HTTPS_PROXY", "MAIL_RELAY", "UNSET", "ID", "PATH"},
				LookupEnv: func(name string) (string, bool) {
					v, ok := map[string]string{
						"HOME": "/var/lib/flowsentry", "TZ": "Europe/Amsterdam", "HTTPS_PROXY": "http://proxy:3128",
						"MAIL_RELAY": "from the server", "ID": "server ID", "PATH": "/server/bin", "SECRET": "never passed",
					}[name]
					return v, ok
				}},
			want: slices.Concat([]string{
				"ID=2",
				"EARLIEST_UTC=10.000000",
				"LATEST_UTC=10.000000",
				"CID=4",
				"CID_NAME=Tenant B",
				"SEVERITY=12",
				"ALERT_TYPE=ddos_amp",
				"TARGET_IP=192.0.2.10",
				"TOTAL_SOURCES=3",
				"SOURCES=198.51.100.0/24 203.0.113.0/24 192.0.2.128/25",
				"ADDITIONAL_PORTS=",
			}, zeros, []string{
				"HOME=/var/lib/flowsentry",
				"TZ=Europe/Amsterdam",
				"HTTPS_PROXY=http://proxy:3128",
				"MAIL_RELAY=from the instance",
				"TKN=0123456789abcdef0123456789abcdef",
				"AID=7",
				"FLOWSENTRY_URL=http://127.0.0.1:8080",
				"FTNBI_CA=/etc/flowsentry/cert.pem",
				"PATH=/usr/local/bin:/usr/bin:/bin",
			}),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.deps.URL = "http://127.0.0.1:8080"
			if tc.deps.LookupEnv == nil {
				tc.deps.LookupEnv = func(string) (string, bool) { return "", false }
			}
			got := env(&tc.alert, 7, "0123456789abcdef0123456789abcdef", tc.config, tc.overrides, tc.deps.shared())
			// The order of an environment does not matter; plugin.Env sorts it.
			slices.Sort(tc.want)
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("env (-got +want):\n%s", diff)
			}
		})
	}
}
