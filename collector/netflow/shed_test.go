package netflow

import "testing"

func TestCarriesTemplates(t *testing.T) {
	v9 := func(sets ...[]byte) []byte {
		p := make([]byte, v9HeaderLen)
		p[1] = 9
		for _, s := range sets {
			p = append(p, s...)
		}
		return p
	}
	ipfix := func(sets ...[]byte) []byte {
		p := make([]byte, ipfixHeaderLen)
		p[1] = 10
		for _, s := range sets {
			p = append(p, s...)
		}
		return p
	}
	set := func(id uint16, n int) []byte {
		s := make([]byte, n)
		s[0], s[1], s[2], s[3] = byte(id>>8), byte(id), byte(n>>8), byte(n)
		return s
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"empty", nil, false},
		{"v5", []byte{0, 5, 0, 1}, false},
		{"sFlow", []byte{0, 0, 0, 5}, false},
		{"v9 template", v9(set(0, 12)), true},
		{"v9 options template", v9(set(1, 12)), true},
		{"v9 data only", v9(set(256, 20), set(300, 8)), false},
		{"v9 data then template", v9(set(256, 20), set(0, 12)), true},
		{"v9 header only", v9(), false},
		{"v9 set of length 0", v9(set(256, 4)[:2], []byte{0, 0}, set(0, 8)), false},
		{"v9 set past the end", v9(set(256, 400)[:8]), false},
		{"IPFIX template", ipfix(set(2, 12)), true},
		{"IPFIX options template", ipfix(set(3, 14)), true},
		{"IPFIX data only", ipfix(set(400, 24)), false},
		{"IPFIX truncated header", ipfix()[:10], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CarriesTemplates(tc.payload); got != tc.want {
				t.Errorf("CarriesTemplates = %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzCarriesTemplates: any input, no panic, no endless loop; a datagram
// the decoder learns a template from carries templates.
func FuzzCarriesTemplates(f *testing.F) {
	f.Add([]byte{0, 9, 0, 1})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, p []byte) {
		carries := CarriesTemplates(p)
		d := NewDecoder(NewTemplates(DefaultConfig()))
		if _, st, _ := d.Decode(benchExporter, 0, p, nil); st.TemplatesLearned > 0 && !carries {
			t.Errorf("the decoder learned %d templates from a datagram CarriesTemplates says has none", st.TemplatesLearned)
		}
	})
}
