package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/flowsentry/flowsentry/store"
)

// lockName is the file in the data folder that `serve` holds an exclusive
// flock(2) on for its lifetime, and `restore` for its run: a restore never
// replaces the database under a running server, nor does a server start
// on a half-restored one. The kernel releases the lock when the process
// ends, however it ends, so a crash leaves no stale lock.
const lockName = "flowsentry.lock"

// errLocked is returned by lockData when another process holds the lock.
var errLocked = errors.New("locked")

// lockData creates data folder dir if needed and takes its lock without
// waiting; release gives it back.
func lockData(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is held by another process: %w", path, errLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// dataFlags are the flags with which backup and restore find the data
// folder as serve does: the configuration file's data_dir, or --data.
type dataFlags struct {
	config string
	ov     overrides
}

func (d *dataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.config, "config", "", "YAML configuration `file` whose data_dir is used (default: the embedded default)")
	fs.StringVar(&d.ov.data, "data", "", "data `folder`, replacing data_dir")
}

// dir is the data folder serve would use.
func (d *dataFlags) dir() (string, error) {
	f, err := loadConfig(d.config, d.ov)
	if err != nil {
		return "", err
	}
	return f.Config.DataDir, nil
}

// parseFile parses args, flags before or after the one FILE argument,
// and returns FILE.
func parseFile(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() == 0 {
		return "", fmt.Errorf("the FILE argument is missing: run \"flowsentry %s FILE\"", fs.Name())
	}
	file := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("unexpected argument %q: %s takes one FILE", fs.Arg(0), fs.Name())
	}
	return file, nil
}

// backupCmd is `flowsentry backup FILE`: a consistent copy of the
// database, taken while the server runs.
func backupCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var df dataFlags
	df.register(fs)
	force := fs.Bool("force", false, "replace FILE if it exists")
	file, err := parseFile(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry backup: %v\n", err)
		return 2
	}
	dir, err := df.dir()
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry backup: %v\n", err)
		return 1
	}
	if _, err := os.Stat(file); err == nil && !*force {
		fmt.Fprintf(stderr, "flowsentry backup: %s exists: choose another file, or add --force to replace it\n", file)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	info, err := store.Backup(ctx, dir, file)
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "backed up %s to %s in %v\n", filepath.Join(dir, store.FileName), info, time.Since(start).Round(time.Millisecond))
	return 0
}

// restoreCmd is `flowsentry restore FILE`: the database replaced by a
// checked backup, with no server running on the data folder.
func restoreCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var df dataFlags
	df.register(fs)
	file, err := parseFile(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry restore: %v\n", err)
		return 2
	}
	dir, err := df.dir()
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry restore: %v\n", err)
		return 1
	}
	ctx := context.Background()
	// Checked before the lock is taken, so that a bad file is named even
	// while the server runs; Restore checks it again.
	if _, err := store.Inspect(ctx, file); err != nil {
		fmt.Fprintf(stderr, "flowsentry restore: %v\n", err)
		return 1
	}
	release, err := lockData(dir)
	if errors.Is(err, errLocked) {
		fmt.Fprintf(stderr, "flowsentry restore: a flowsentry server is running on the data folder %s (%v): "+
			"stop the server first (systemctl stop flowsentry), then run the restore again\n", dir, err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry restore: %v\n", err)
		return 1
	}
	defer release()
	info, kept, err := store.Restore(ctx, dir, file, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s from %s\n", info, file)
	if kept != "" {
		fmt.Fprintf(stdout, "the replaced database is kept as %s\n", kept)
	}
	return 0
}
