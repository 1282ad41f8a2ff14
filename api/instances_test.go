package api

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowsentry/flowsentry/plugin"
)

// TestKeepPasswords checks that an instance edited through the API keeps
// its stored password when the client leaves the field out or sends back
// the mask the API shows, and takes a new one when given.
func TestKeepPasswords(t *testing.T) {
	reg, errs := plugin.Load(examplesCopy(t))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	a := &Alerting{Plugins: reg, Instances: plugin.NewInstances(reg, &plugin.MemInstances{})}
	if _, err := a.Instances.Load(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	saved, err := a.Instances.Put(context.Background(), plugin.Instance{Name: "mail", Plugin: "email", Values: map[string]string{"EMAIL_PASSWORD": "hunter22"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		values map[string]string
		want   string
	}{
		{"left out", map[string]string{"EMAIL_BODY": "hi"}, "hunter22"},
		{"no values", nil, "hunter22"},
		{"masked", map[string]string{"EMAIL_PASSWORD": passwordMask}, "hunter22"},
		{"changed", map[string]string{"EMAIL_PASSWORD": "correct-horse"}, "correct-horse"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := plugin.Instance{ID: saved.ID, Name: "mail", Plugin: "email", Values: c.values}
			keepPasswords(a, &in)
			if got := in.Values["EMAIL_PASSWORD"]; got != c.want {
				t.Errorf("EMAIL_PASSWORD = %q, want %q", got, c.want)
			}
		})
	}
}

// examplesCopy returns a copy of the example plugin folder: plugins run
// in their folder and some write there (the email example's calls.log).
func examplesCopy(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "plugins")
	if err := os.CopyFS(dir, os.DirFS("../examples")); err != nil {
		t.Fatal(err)
	}
	return dir
}
