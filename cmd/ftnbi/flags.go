package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flowsentry/flowsentry/annotate"
)

// defaultPort is the port of -s HOST without one: the server's default
// HTTP port.
const defaultPort = "8080"

// options are the parsed command line and environment.
type options struct {
	help    bool
	version bool
	val     bool
	server  string // base URL, e.g. http://127.0.0.1:8080
	ca      string // PEM file of the CAs trusted for https; "": the system's
	// -alert
	user, pass            string
	createdAgo, activeAgo time.Duration // 0: not given
	// -val
	annotation annotate.Request
	timeout    time.Duration
}

// parse reads the FlowTraq-style single-dash flags. They are parsed by
// hand because -tn takes values such as -3m that look like flags, and -val
// is followed by any number of KEY=VALUE arguments.
func parse(args []string, getenv func(string) string) (options, error) {
	o := options{timeout: 10 * time.Second}
	var alert, val bool
	var server, timeout string
	var created, active string
	var pairs []string
	values := map[string]*string{"-s": &server, "-un": &o.user, "-up": &o.pass, "-tn": &created, "-at": &active, "-timeout": &timeout, "-ca": &o.ca}
	seen := map[string]bool{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if dst, ok := values[a]; ok {
			if seen[a] {
				return o, fmt.Errorf("%s is given twice: give it once", a)
			}
			if i+1 == len(args) {
				return o, fmt.Errorf("%s needs a value; ftnbi -h shows the flags", a)
			}
			seen[a] = true
			*dst = args[i+1]
			i++
			continue
		}
		switch {
		case a == "-alert":
			alert = true
		case a == "-val":
			val = true
		case a == "-j":
			// JSON is the only format.
		case a == "-h" || a == "-help" || a == "--help":
			o.help = true
			return o, nil
		case a == "-version" || a == "--version":
			o.version = true
			return o, nil
		case strings.HasPrefix(a, "-"):
			return o, fmt.Errorf("unknown flag %s; ftnbi -h shows the flags", a)
		default:
			pairs = append(pairs, a)
		}
	}
	switch {
	case alert && val:
		return o, errors.New("-alert and -val cannot be combined: run ftnbi once for each")
	case !alert && !val:
		return o, errors.New("nothing to do: give -alert to list alerts, or -val KEY=VALUE ... to annotate the alert action running this plugin; ftnbi -h shows the flags")
	case alert && len(pairs) > 0:
		return o, fmt.Errorf("unexpected argument %q: -alert takes no KEY=VALUE arguments", pairs[0])
	}
	if timeout != "" {
		d, err := time.ParseDuration(timeout)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("-timeout %q is not a duration: write e.g. 10s or 1m", timeout)
		}
		o.timeout = d
	}
	if server == "" {
		server = getenv("FLOWSENTRY_URL")
	}
	if o.ca == "" {
		o.ca = getenv("FTNBI_CA")
	}
	if server == "" {
		return o, errors.New("no server: give -s HOST[:PORT] (FLOWSENTRY_URL is not set)")
	}
	var err error
	if o.server, err = serverURL(server); err != nil {
		return o, err
	}
	if val {
		o.val = true
		o.annotation, err = annotation(pairs, getenv)
		return o, err
	}
	if o.user == "" || !seen["-up"] {
		return o, errors.New("-alert needs the credentials of a flowsentry user: give -un USER -up PASS")
	}
	if o.createdAgo, err = parseAgo("-tn", created); err != nil {
		return o, err
	}
	o.activeAgo, err = parseAgo("-at", active)
	return o, err
}

// parseAgo reads a relative time such as -3m, 3m, 90s, 2h or 1d; "" is 0.
func parseAgo(flag, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	bad := fmt.Errorf("%s %q is not a relative time: write a whole number and a unit s, m, h or d, e.g. %s -3m", flag, s, flag)
	num := strings.TrimPrefix(s, "-")
	if len(num) < 2 {
		return 0, bad
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[num[len(num)-1]]
	n, err := strconv.ParseUint(num[:len(num)-1], 10, 32)
	if unit == 0 || err != nil || num[0] == '+' {
		return 0, bad
	}
	if n == 0 {
		return 0, fmt.Errorf("%s %s selects nothing: give a time span of at least 1%c", flag, s, num[len(num)-1])
	}
	if n > uint64(math.MaxInt64/unit) {
		return 0, fmt.Errorf("%s %s is too far back: give at most %d%c", flag, s, math.MaxInt64/unit, num[len(num)-1])
	}
	return time.Duration(n) * unit, nil
}

// serverURL turns -s HOST[:PORT] into the base URL of the API. An http://
// or https:// URL (FLOWSENTRY_URL) is taken as it is.
func serverURL(s string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("server %q is not a valid address (%s): write HOST, HOST:PORT, [IPv6]:PORT or http://HOST:PORT", s, why)
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.User != nil {
			return "", bad("not an http:// or https:// URL of a host")
		}
		return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a name, an IPv4 address or a bare IPv6 address.
		if a, perr := netip.ParseAddr(strings.Trim(s, "[]")); perr == nil {
			host = a.String()
		} else if strings.ContainsAny(s, ":[]/ ") {
			return "", bad("a malformed host or port")
		} else {
			host = s
		}
		port = defaultPort
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", bad("the port is not a number from 1 to 65535")
	}
	if host == "" {
		return "", bad("the host is empty")
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// annotation builds the request of -val from its KEY=VALUE arguments and
// the TKN, ID and AID of the plugin's environment.
func annotation(pairs []string, getenv func(string) string) (annotate.Request, error) {
	req := annotate.Request{Token: getenv("TKN"), Values: map[string]uint64{}}
	var missing []string
	for _, name := range []string{"TKN", "ID", "AID"} {
		if getenv(name) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return req, fmt.Errorf("%s not set: ftnbi -val annotates the alert action of the plugin flowsentry runs, and reads TKN, ID and AID from the plugin's environment", strings.Join(missing, ", "))
	}
	for _, id := range []struct {
		name string
		dst  *uint64
	}{{"ID", &req.Alert}, {"AID", &req.Action}} {
		n, err := strconv.ParseUint(getenv(id.name), 10, 64)
		if err != nil || n == 0 {
			return req, fmt.Errorf("%s=%q is not an ID (a positive integer): run ftnbi -val with the environment flowsentry gives the plugin", id.name, getenv(id.name))
		}
		*id.dst = n
	}
	if len(pairs) == 0 {
		return req, errors.New("-val needs at least one KEY=VALUE, e.g. ftnbi -val tcp_total_drop=42")
	}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return req, fmt.Errorf("%q is not KEY=VALUE: write e.g. tcp_total_drop=42", p)
		}
		if _, dup := req.Values[k]; dup {
			return req, fmt.Errorf("key %q is given twice: give each key once per call", k)
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 || n > math.MaxInt64 {
			return req, fmt.Errorf("value %q of key %q is not a positive integer: annotation values are whole numbers from 1 to %d", v, k, int64(math.MaxInt64))
		}
		req.Values[k] = n
	}
	return req, nil
}
