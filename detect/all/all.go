// Package all registers every detector family: import it for its side
// effect. Adding a family is one line here.
package all

import (
	_ "github.com/flowsentry/flowsentry/detect/blacklist" // blacklist
	_ "github.com/flowsentry/flowsentry/detect/ddos"      // ddos_flood and subtypes, ddos_amp
	_ "github.com/flowsentry/flowsentry/detect/exfil"     // exfil
	_ "github.com/flowsentry/flowsentry/detect/newserver" // new_server, new_client
	_ "github.com/flowsentry/flowsentry/detect/scan"      // scan
	_ "github.com/flowsentry/flowsentry/detect/slow"      // ddos_slow
	_ "github.com/flowsentry/flowsentry/detect/threshold" // threshold, port_threshold
)
