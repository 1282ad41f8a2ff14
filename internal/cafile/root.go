// Package cafile builds the HTTP transport of flowsentry's clients (ftnbi,
// flowsentry action) that trust only the CAs of one PEM file: the
// server's own CA or self-signed certificate. Verification is never
// turned off.
package cafile

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
)

// Transport returns a transport trusting only the certificates of the PEM
// file caFile for https; flag names the option in errors (e.g. "-ca").
func Transport(flag, caFile string) (*http.Transport, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; give the PEM file of the CA (or the self-signed certificate) of the server's certificate", flag, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s holds no PEM certificate; give the file of the CA (or the self-signed certificate) of the server's certificate", flag, caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return tr, nil
}
