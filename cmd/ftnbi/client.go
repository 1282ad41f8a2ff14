package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/flowsentry/flowsentry/annotate"
	"github.com/flowsentry/flowsentry/internal/cafile"
)

// maxAnswer is the largest answer read from the server: 10,000 alerts of
// a few KiB each.
const maxAnswer = 256 << 20

// refusal is a message of the server refusing a request, printed as it is
// (plugins may match the manual's messages).
type refusal string

// Error returns the message.
func (r refusal) Error() string { return string(r) }

// client talks to the API of one flowsentry server.
type client struct {
	base    string // e.g. http://127.0.0.1:8080
	timeout time.Duration
	http    *http.Client
}

// newClient returns a client of the server at base. A non-empty caFile
// names a PEM file of the CAs that alone are trusted for https, instead of
// the system's; verification is never turned off.
func newClient(base string, timeout time.Duration, caFile string) (*client, error) {
	c := &client{base: base, timeout: timeout, http: &http.Client{Timeout: timeout}}
	if caFile == "" {
		return c, nil
	}
	tr, err := cafile.Transport("-ca", caFile)
	if err != nil {
		return nil, err
	}
	c.http.Transport = tr
	return c, nil
}

// annotate posts an annotation request.
func (c *client) annotate(ctx context.Context, req annotate.Request) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encoding the request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/annotations", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("server %s: %w", c.base, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	_, err = c.do(hr)
	return err
}

// alerts gets the alerts created in the last createdAgo and active in the
// last activeAgo (0: no bound) and prints them as an indented JSON array.
func (c *client) alerts(ctx context.Context, user, pass string, createdAgo, activeAgo time.Duration, out io.Writer) error {
	q := url.Values{}
	now := time.Now()
	if createdAgo > 0 {
		q.Set("created_since", now.Add(-createdAgo).UTC().Format(time.RFC3339Nano))
	}
	if activeAgo > 0 {
		q.Set("active_since", now.Add(-activeAgo).UTC().Format(time.RFC3339Nano))
	}
	u := c.base + "/api/v1/alerts"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("server %s: %w", c.base, err)
	}
	hr.SetBasicAuth(user, pass)
	body, err := c.do(hr)
	if err != nil {
		return err
	}
	body = bytes.TrimSpace(body)
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil || !bytes.HasPrefix(body, []byte("[")) {
		return fmt.Errorf("the answer of %s is not a JSON array of alerts; is -s the address of a flowsentry server?", c.base)
	}
	buf.WriteByte('\n')
	_, err = buf.WriteTo(out)
	return err
}

// do sends a request and returns the body of a 2xx answer. Errors say
// what went wrong in terms of what the user can fix; the server's own
// error messages come back as a refusal for annotations, as an error
// otherwise.
func (c *client) do(req *http.Request) ([]byte, error) {
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", programName)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, c.transportError(err)
	}
	if resp.StatusCode/100 == 2 {
		return body, nil
	}
	var e annotate.ErrorBody
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		if req.Method == http.MethodPost {
			return nil, refusal(e.Error)
		}
		return nil, errors.New(e.Error)
	}
	return nil, fmt.Errorf("unexpected answer from %s: %s; is it a flowsentry server?", c.base, resp.Status)
}

// transportError explains a failure to talk to the server.
func (c *client) transportError(err error) error {
	var ne net.Error
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("cannot trust the certificate of %s: it is not signed by a known CA; give the server's CA certificate with -ca FILE (or FTNBI_CA)", c.base)
	case errors.As(err, &badHost):
		return fmt.Errorf("the certificate of %s is not valid for %s; reach the server by a name or address the certificate holds", c.base, badHost.Host)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to %s: connection refused; the flowsentry server must be running and listening there (check -s or FLOWSENTRY_URL)", c.base)
	case errors.As(err, &dns):
		return fmt.Errorf("cannot find the server %s: %v; check -s or FLOWSENTRY_URL", c.base, dns)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("no answer from %s within %s; check that the flowsentry server is healthy, or give more time with -timeout", c.base, c.timeout)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	}
	return fmt.Errorf("cannot talk to %s: %v", c.base, err)
}

// oneLine joins the lines of a message, so each error is one line of
// the standard error.
func oneLine(s string) string {
	return strings.TrimSpace(lineBreaks.Replace(s))
}

var lineBreaks = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")
