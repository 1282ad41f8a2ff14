package api

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
	"time"
)

// certificate is the server's TLS certificate, read from its PEM files at
// New and again by Reload. Handshakes read it through an atomic pointer,
// so a reload never blocks them and a failed one keeps the certificate in
// use.
type certificate struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// loadCertificate reads the certificate of cfg, or returns nil when cfg
// sets none.
func loadCertificate(cfg Config) (*certificate, error) {
	if !cfg.TLS() {
		return nil, nil
	}
	c := &certificate{certFile: cfg.TLSCert, keyFile: cfg.TLSKey}
	if _, err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again and, when they hold a certificate and its
// key, serves it from the next handshake on; it returns the certificate's
// expiry.
func (c *certificate) reload() (time.Time, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return time.Time{}, fmt.Errorf("http.tls_cert %s, http.tls_key %s: %w; give PEM files of a certificate (its chain after it) and of its private key, readable by flowsentry's user", c.certFile, c.keyFile, err)
	}
	c.cur.Store(&cert)
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
		return time.Time{}, nil
	}
	return cert.Leaf.NotAfter, nil
}

// config is the server's TLS configuration: TLS 1.2 or later, the
// certificate of the moment.
func (c *certificate) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	}
}

// ReloadTLS reads http.tls_cert and http.tls_key again (on SIGHUP): new
// connections get the new certificate, those open keep theirs. On error,
// which names the files and the fix, the certificate in use stays. It does
// nothing without TLS.
func (s *Server) ReloadTLS() error {
	if s.cert == nil {
		return nil
	}
	notAfter, err := s.cert.reload()
	if err != nil {
		return err
	}
	s.deps.Log.Info("tls certificate reloaded", "cert", s.cert.certFile, "not_after", notAfter)
	return nil
}
