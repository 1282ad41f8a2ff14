package alert

import "testing"

// TestGroup checks which field names an alert's traffic group.
func TestGroup(t *testing.T) {
	f := func(name, value string) Field { return Field{Name: name, Value: value, Number: true} }
	for _, c := range []struct {
		name   string
		fields []Field
		want   uint32
	}{
		{"threshold on a group", []Field{f("OBJECT_TYPE", "TGRP"), f("TGRP", "3")}, 3},
		{"DDoS target", []Field{f("TARGET_IP", "10.0.0.1"), f("TARGET_TG", "12")}, 12},
		{"outbound scan: no target group, the scanner's", []Field{f("TARGET_TG", "0"), f("SCANNER_TG", "7")}, 7},
		{"the first of the fields", []Field{f("CLIENT_TG", "5"), f("SERVER_TG", "6")}, 5},
		{"blacklist: the client's group when the server has none", []Field{f("SERVER_TG", "0"), f("CLIENT_TG", "9")}, 9},
		{"interface alert", []Field{f("EXPORTER_ADDR", "192.0.2.1"), f("IFINDEX", "3")}, 0},
		{"not a number", []Field{f("TGRP", "x")}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := Alert{Fields: c.fields}
			if got := a.Group(); got != c.want {
				t.Errorf("Group() = %d, want %d", got, c.want)
			}
		})
	}
}
