package check

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPrefix(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"nil", nil, nil},
		{"one", Errorf("address", "bad"), []string{"http.address: bad"}},
		{"list item", Errorf("[2].name", "empty"), []string{"http[2].name: empty"}},
		{"no path", Errorf("", "whole"), []string{"http: whole"}},
		{"other error", errors.New("plain"), []string{"http: plain"}},
		{
			"nested joins keep every error",
			errors.Join(errors.Join(Errorf("a", "1"), Errorf("b", "2")), Errorf("c", "3"), nil),
			[]string{"http.a: 1", "http.b: 2", "http.c: 3"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range Flatten(Prefix("http", tc.err)) {
				var ce *Error
				if !errors.As(e, &ce) {
					t.Errorf("%v is a %T, want an *Error", e, e)
				}
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Prefix (-got +want):\n%s", diff)
			}
		})
	}
}
