package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// buildTLS makes the TLS configuration for https endpoints from Config.TLS and the
// PEM files, and reports a file that is missing, holds no certificate, or a key
// that does not match its certificate, now rather than at the first request.
func buildTLS(cfg Config) (*tls.Config, error) {
	if cfg.TLS == nil && cfg.CAFile == "" && cfg.CertFile == "" && cfg.KeyFile == "" && cfg.ServerName == "" {
		return nil, nil
	}
	t := &tls.Config{}
	if cfg.TLS != nil {
		t = cfg.TLS.Clone()
	}
	if t.MinVersion == 0 {
		t.MinVersion = tls.VersionTLS12
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("gateway: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		t.RootCAs = pool
	}
	switch {
	case cfg.CertFile != "" && cfg.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: client certificate %s and key %s: %w", cfg.CertFile, cfg.KeyFile, err)
		}
		t.Certificates = []tls.Certificate{cert}
	case cfg.CertFile != "" || cfg.KeyFile != "":
		return nil, fmt.Errorf("gateway: CertFile and KeyFile go together: set both or neither")
	}
	if cfg.ServerName != "" {
		t.ServerName = cfg.ServerName
	}
	return t, nil
}
