package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// serial number, and its key, as PEM files into dir; it returns their paths
// and the certificate.
func writeCert(t *testing.T, dir string, serial int64) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "flowsentry test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{certFile, "CERTIFICATE", der}, {keyFile, "PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// TestTLS runs the server over HTTPS and reloads its certificate: a good
// new one is served to new connections, a bad one leaves the old in place.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, first := writeCert(t, dir, 1)
	cfg := DefaultConfig()
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	s, _ := startServer(t, cfg, nil)
	addr := s.Addr().String()

	roots := x509.NewCertPool()
	roots.AddCert(first)
	// served returns the serial number of the certificate a new connection
	// gets, checking that /healthz answers over it.
	served := func(t *testing.T) int64 {
		t.Helper()
		var serial int64
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			// Trust whatever the server presents, to see which one it is; the
			// chain is checked below against the roots of the moment.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
				serial = cs.PeerCertificates[0].SerialNumber.Int64()
				_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1"})
				return err
			}},
		}}
		resp, err := client.Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatalf("GET https://%s/healthz: %v", addr, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz over TLS: %d", resp.StatusCode)
		}
		return serial
	}

	t.Run("https", func(t *testing.T) {
		if got := served(t); got != 1 {
			t.Errorf("serial %d, want 1", got)
		}
		// A client that trusts nothing more than the system's roots fails.
		if _, err := (&http.Client{Timeout: 5 * time.Second}).Get("https://" + addr + "/healthz"); err == nil {
			t.Error("a client without the certificate's CA connected")
		}
	})
	t.Run("no plain http", func(t *testing.T) {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Error("plain HTTP answered 200 on the HTTPS port")
			}
		}
	})
	t.Run("reload", func(t *testing.T) {
		_, _, second := writeCert(t, dir, 2)
		roots.AddCert(second)
		if err := s.ReloadTLS(); err != nil {
			t.Fatal(err)
		}
		if got := served(t); got != 2 {
			t.Errorf("serial %d after the reload, want 2", got)
		}
	})
	t.Run("bad reload keeps the certificate", func(t *testing.T) {
		if err := os.WriteFile(certFile, []byte("not a certificate\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := s.ReloadTLS()
		if err == nil || !strings.Contains(err.Error(), certFile) || !strings.Contains(err.Error(), "give PEM files") {
			t.Errorf("reload of a broken file: %v, want an error naming %s and the fix", err, certFile)
		}
		if got := served(t); got != 2 {
			t.Errorf("serial %d after a failed reload, want 2", got)
		}
	})
}

// TestTLSConfig checks the certificate settings refused by Validate and New.
func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeCert(t, dir, 1)
	other := t.TempDir()
	_, otherKey, _ := writeCert(t, other, 2)
	for _, tc := range []struct {
		name      string
		cert, key string
		want      string
	}{
		{"cert without key", certFile, "", "tls_key: is empty while tls_cert is set"},
		{"key without cert", "", keyFile, "tls_cert: is empty while tls_key is set"},
		{"missing file", filepath.Join(dir, "none.pem"), keyFile, "none.pem"},
		{"key of another certificate", certFile, otherKey, "private key does not match public key"},
		{"key file as certificate", keyFile, keyFile, "give PEM files of a certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.TLSCert, cfg.TLSKey = tc.cert, tc.key
			_, err := New(cfg, Deps{Registerer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
