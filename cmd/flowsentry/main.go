// Command flowsentry is the flow analysis and alerting server: `serve` runs
// the daemon, `replay` runs a capture through the same pipeline on the
// capture's clock, `version` prints the build.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: flowsentry COMMAND [flags]

commands:
  serve    run the collector, rates and HTTP server (default config if no --config)
  replay   read pcap/pcapng files, decode exports and meter packets, print JSON lines
  plugin   plugin tools: "plugin test DIR --set KEY=VALUE ..." runs a plugin in TEST mode
  action   approve, reject, stop, restart or show an alert's action on a running server
  backup   "backup FILE [--force]": a consistent copy of the database, also while the server runs
  restore  "restore FILE": replace the database with a checked backup (the server stopped)
  user     add, passwd, list or delete the users of the API and web UI (the server stopped or running)
  version  print the version

run "flowsentry COMMAND -h" for the flags of a command
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "replay":
		return replayCmd(args[1:], stdout, stderr)
	case "plugin":
		return pluginCmd(args[1:], stdout, stderr)
	case "action":
		return actionCmd(args[1:], stdout, stderr)
	case "backup":
		return backupCmd(args[1:], stdout, stderr)
	case "restore":
		return restoreCmd(args[1:], stdout, stderr)
	case "user":
		return userCmd(args[1:], os.Stdin, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "flowsentry: unknown command %q\n\n%s", args[0], usage)
	return 2
}
