package httpauth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// ServerTLS is the TLS of a REST listener: its certificate, TLS 1.2 or later with Go's
// default cipher suites (for 1.2, ECDHE key exchange only, so forward secret: Go leaves RSA
// key exchange and 3DES out by default), and, when clientCA is set, a client certificate
// signed by it required of every client (mutual TLS): without one the handshake fails,
// before any HTTP.
func ServerTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		if c.ClientCAs, err = CertPool(clientCA); err != nil {
			return nil, err
		}
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// CertPool reads a PEM bundle of certificate authorities.
func CertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificates in %s", file)
	}
	return pool, nil
}
