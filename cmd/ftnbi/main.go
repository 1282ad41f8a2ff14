// Command ftnbi is flowsentry's FlowTraq-compatible command-line client.
// It does the two things FlowTraq plugins and scripts use ftnbi for:
//
//	ftnbi -s HOST[:PORT] -un USER -up PASS -alert [-tn -3m] [-at 1m] -j
//
// prints, as a JSON array in the FlowTraq format, the alerts USER may see:
// created in the last 3 minutes (-tn), active in the last minute (-at), or
// all of them (up to 10,000) without either; and
//
//	ftnbi -val KEY=VALUE [KEY=VALUE ...]
//
// annotates the alert action whose plugin runs it with positive integers,
// reading TKN, ID and AID from the environment flowsentry gives the plugin
// and the server's address from FLOWSENTRY_URL (or -s). It prints nothing
// on success and the server's message, on one line of the standard error,
// when the server refuses the values.
//
// ftnbi -version prints its version, commit and build date.
//
// Exit status: 0 on success, 1 when the server cannot be reached or
// refuses the request, 2 for bad flags or a missing environment variable.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/flowsentry/flowsentry/internal/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	programName = "ftnbi"
)

// run runs ftnbi with args (without the program name) and the environment
// getenv, and returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	opts, err := parse(args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return exitUsage
	}
	if opts.help {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if opts.version {
		fmt.Fprintln(stdout, buildinfo.String(programName))
		return exitOK
	}
	c, err := newClient(opts.server, opts.timeout, opts.ca)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", programName, err)
		return exitUsage
	}
	if opts.val {
		err = c.annotate(ctx, opts.annotation)
	} else {
		err = c.alerts(ctx, opts.user, opts.pass, opts.createdAgo, opts.activeAgo, stdout)
	}
	if err != nil {
		var rej refusal
		if errors.As(err, &rej) {
			fmt.Fprintln(stderr, oneLine(string(rej)))
		} else {
			fmt.Fprintf(stderr, "%s: %s\n", programName, oneLine(err.Error()))
		}
		return exitFailed
	}
	return exitOK
}

const usage = `Usage:
  ftnbi -s HOST[:PORT] -un USER -up PASS -alert [-tn AGO] [-at AGO] [-j]
  ftnbi [-s HOST[:PORT]] -val KEY=VALUE [KEY=VALUE ...]

  -s HOST[:PORT]  the flowsentry server (port 8080 when not given; an
                  http:// or https:// URL is accepted too); default: the
                  FLOWSENTRY_URL environment variable
  -un USER        flowsentry user name (-alert)
  -up PASS        its password (-alert)
  -alert          print the alerts USER may see, as a JSON array
  -tn AGO         only alerts created in the last AGO, e.g. -3m
  -at AGO         only alerts active in the last AGO, e.g. 1m
  -j              JSON output (the only format; accepted for FlowTraq
                  compatibility)
  -val            store KEY=VALUE annotations (positive integers) on the
                  alert action running this plugin; needs TKN, ID and AID
                  in the environment
  -timeout D      give up on the server after D (default 10s)
  -ca FILE        trust only the CA certificates of this PEM file for an
                  https:// server (e.g. its self-signed certificate)
                  instead of the system's; default: the FTNBI_CA
                  environment variable
  -version        print the version, commit and build date
  -h              this help

AGO is a whole number and a unit s, m, h or d, with or without a minus
sign: -3m and 3m both mean the last three minutes.
`
