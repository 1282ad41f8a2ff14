package plugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoad(t *testing.T) {
	r, errs := Load("testdata/plugins")
	abs, err := filepath.Abs("testdata/plugins")
	if err != nil {
		t.Fatal(err)
	}
	wantErrs := []string{
		`plugin "badspec": buildDate: is required; give the build time in milliseconds since the UNIX epoch`,
		`plugin "badspec": version: "eleven" is not an integer; give the plugin's integer version`,
		`plugin "badspec": executable missing: ` + abs + `/badspec/run.sh; put the program there or correct "executable" in gui.json`,
		`plugin "missing": executable missing: ` + abs + `/missing/plugin.sh; put the program there or correct "executable" in gui.json`,
		`plugin "noexec": executable ` + abs + `/noexec/run.sh is not executable; run chmod +x on it`,
	}
	var gotErrs []string
	for _, err := range errs {
		gotErrs = append(gotErrs, errorLines(err)...)
	}
	if diff := cmp.Diff(gotErrs, wantErrs); diff != "" {
		t.Errorf("errors (-got +want):\n%s", diff)
	}
	type row struct {
		Name, Dir, Executable string
		Valid                 bool
	}
	var got []row
	for _, p := range r.List() {
		got = append(got, row{p.Name, p.Dir, p.Executable, p.Err == nil})
	}
	want := []row{}
	for _, name := range []string{"badspec", "crash", "fail", "flood", "hang", "leftovers", "missing", "noexec", "ok", "orphan", "slow", "stubborn"} {
		exe := filepath.Join(abs, name, "run.sh")
		if name == "missing" {
			exe = filepath.Join(abs, name, "plugin.sh")
		}
		valid := name != "badspec" && name != "missing" && name != "noexec"
		want = append(want, row{name, filepath.Join(abs, name), exe, valid})
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("plugins (-got +want):\n%s", diff)
	}
	if _, ok := r.Get("notaplugin"); ok {
		t.Error("a folder without gui.json is a plugin")
	}
	if p, ok := r.Get("ok"); !ok || p.Spec.Label != "ok" {
		t.Errorf("Get(ok) = %+v, %v", p, ok)
	}
}

func TestRescan(t *testing.T) {
	dir := t.TempDir()
	r, errs := Load(dir)
	if len(errs) != 0 || len(r.List()) != 0 {
		t.Fatalf("empty folder: %v, %v", r.List(), errs)
	}
	add := func(name, gui string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "gui.json"), []byte(gui), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	add("one", guiJSON(``, ``))
	add(".hidden", guiJSON(``, ``))
	held, _ := r.Get("one")
	if errs := r.Rescan(); len(errs) != 0 {
		t.Fatal(errs)
	}
	if names := pluginNames(r); !cmp.Equal(names, []string{"one"}) {
		t.Fatalf("after adding: %v", names)
	}
	if held != nil {
		t.Fatal("a plugin was there before it was added")
	}
	// A symbolic link to a plugin folder is a plugin.
	if err := os.Symlink(filepath.Join(dir, "one"), filepath.Join(dir, "two")); err != nil {
		t.Fatal(err)
	}
	r.Rescan()
	if names := pluginNames(r); !cmp.Equal(names, []string{"one", "two"}) {
		t.Fatalf("after linking: %v", names)
	}
	old, _ := r.Get("one")
	if err := os.RemoveAll(filepath.Join(dir, "one")); err != nil {
		t.Fatal(err)
	}
	errs = r.Rescan()
	if names := pluginNames(r); !cmp.Equal(names, []string{}) || len(errs) != 0 {
		t.Fatalf("after removing: %v, %v", names, errs)
	}
	if old.Name != "one" || old.Err != nil {
		t.Errorf("a plugin held across a rescan changed: %+v", old)
	}
	// A folder that cannot be read keeps the plugins.
	add("three", guiJSON(``, ``))
	r.Rescan()
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir + ".gone") })
	errs = r.Rescan()
	want := "plugin folder " + dir + ": no such file or directory; create it or set plugin_dir to the folder holding one subfolder per plugin"
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("errors: got %v, want %q", errs, want)
	}
	if names := pluginNames(r); !cmp.Equal(names, []string{"three"}) {
		t.Errorf("after the folder went away: %v", names)
	}
}

func pluginNames(r *Registry) []string {
	names := []string{}
	for _, p := range r.List() {
		names = append(names, p.Name)
	}
	return names
}

func TestCheckInstance(t *testing.T) {
	r, _ := Load("../examples")
	cases := []struct {
		name string
		in   Instance
		want map[string]string
		err  string
	}{
		{
			name: "valid",
			in:   Instance{Name: "ops mail", Plugin: "email", Values: map[string]string{"EMAIL_USERNAME": "ops"}},
			want: map[string]string{"EMAIL_USERNAME": "ops", "EMAIL_MAILPORT": "587"},
		},
		{name: "no name", in: Instance{ID: 4, Plugin: "email"}, err: "name: plugin instance 4: name is empty; give the instance a name"},
		{
			name: "unknown plugin",
			in:   Instance{Name: "x", Plugin: "sms"},
			err:  `plugin: plugin instance "x": plugin "sms" is not in the plugin folder ../examples; installed: email`,
		},
		{
			name: "bad value",
			in:   Instance{Name: "x", Plugin: "email", Values: map[string]string{"EMAIL_USERNAME": "o"}},
			err:  `values.EMAIL_USERNAME: plugin instance "x": plugin "email": EMAIL_USERNAME ("Username"): value "o" is 1 character long, shorter than the minimum length 2`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := r.CheckInstance(&c.in)
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Errorf("values (-got +want):\n%s", diff)
			}
			if gotErr := strings.Join(errorLines(err), "\n"); gotErr != c.err {
				t.Errorf("error: got %q, want %q", gotErr, c.err)
			}
		})
	}
}
