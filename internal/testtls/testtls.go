// Package testtls makes TLS certificates for tests.
package testtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a test CA with a server certificate for 127.0.0.1 (and
// nats.test) and a client certificate, as files.
type PKI struct {
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey string
}

// NewPKI writes a CA, a server certificate and a client certificate signed
// by it into dir, their names starting with prefix. Keys are mode 0600.
func NewPKI(t testing.TB, dir, prefix string) PKI {
	t.Helper()
	serial := int64(0)
	issue := func(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		tmpl.NotAfter = time.Now().Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key,
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	}
	ca, caKey, caPEM, _ := issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: prefix + " test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	_, _, srvPEM, srvKey := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:    []string{"nats.test"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	_, _, cliPEM, cliKey := issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "simgate"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)
	write := func(name string, body []byte) string {
		path := filepath.Join(dir, prefix+"-"+name)
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return PKI{
		CAFile:     write("ca.pem", caPEM),
		ServerCert: write("server.pem", srvPEM),
		ServerKey:  write("server-key.pem", srvKey),
		ClientCert: write("client.pem", cliPEM),
		ClientKey:  write("client-key.pem", cliKey),
	}
}

// SelfSigned writes a server certificate for 127.0.0.1, its key and its
// CA into dir (see NewPKI), and returns their paths.
func SelfSigned(t testing.TB, dir string) (cert, key, ca string) {
	t.Helper()
	p := NewPKI(t, dir, "test")
	return p.ServerCert, p.ServerKey, p.CAFile
}
