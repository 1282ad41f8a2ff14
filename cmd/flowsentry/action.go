package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flowsentry/flowsentry/internal/cafile"
)

const actionUsage = `usage: flowsentry action OPERATION ACTION-ID [flags]

operations:
  show      print the action and its calls
  approve   start an action waiting for approval (CREATE is sent)
  reject    end an action waiting for approval without calling its plugin
  stop      send DELETE now and end the action
  restart   send CREATE again for an ended action of an open alert

flags:
`

// actionCmd drives actions through the HTTP API of a running server.
func actionCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("action", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", envOr("FLOWSENTRY_URL", "http://127.0.0.1:8080"), "server `URL` ($FLOWSENTRY_URL)")
	user := fs.String("user", envOr("FLOWSENTRY_USER", "admin"), "user `name` ($FLOWSENTRY_USER)")
	password := fs.String("password", os.Getenv("FLOWSENTRY_PASSWORD"), "`password` ($FLOWSENTRY_PASSWORD)")
	ca := fs.String("ca", envOr("FLOWSENTRY_CA", os.Getenv("FTNBI_CA")), "PEM `file` of the CA (or self-signed certificate) to trust for an https server, instead of the system's ($FLOWSENTRY_CA, else $FTNBI_CA)")
	fs.Usage = func() {
		fmt.Fprint(stderr, actionUsage)
		fs.PrintDefaults()
	}
	if len(args) < 2 {
		fs.Usage()
		return 2
	}
	op, rawID := args[0], args[1]
	if err := fs.Parse(args[2:]); err != nil {
		return 2
	}
	if _, err := strconv.ParseUint(rawID, 10, 64); err != nil {
		fmt.Fprintf(stderr, "flowsentry action: %q is not an action ID; give the number shown in the alert's actions\n", rawID)
		return 2
	}
	method, path := http.MethodPost, "/api/v1/actions/"+rawID+"/"+op
	switch op {
	case "show":
		method, path = http.MethodGet, "/api/v1/actions/"+rawID
	case "approve", "reject", "stop", "restart":
	default:
		fmt.Fprintf(stderr, "flowsentry action: unknown operation %q; use show, approve, reject, stop or restart\n", op)
		return 2
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if *ca != "" {
		tr, err := cafile.Transport("-ca", *ca)
		if err != nil {
			fmt.Fprintf(stderr, "flowsentry action: %v\n", err)
			return 2
		}
		client.Transport = tr
	}
	body, err := apiCall(client, method, strings.TrimRight(*server, "/")+path, *user, *password)
	if err != nil {
		fmt.Fprintf(stderr, "flowsentry action: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(body)
	return 0
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// apiCall makes one authenticated API request with client and returns the body of a
// 2xx answer, or the server's error message.
func apiCall(client *http.Client, method, url, user, password string) ([]byte, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bad server URL: %w", err)
	}
	req.SetBasicAuth(user, password)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the server at %s (is flowsentry serve running? set --server): %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	if !bytes.HasSuffix(body, []byte("\n")) {
		body = append(body, '\n')
	}
	return body, nil
}
