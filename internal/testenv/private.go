package testenv

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
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// StartRedisServer starts a redis-server of the test's own, with args added
// to its command line (--requirepass, --tls-port...), and returns its port;
// it is stopped when the test ends. A machine without redis-server skips
// the test (fails it with PERSIST_TEST_REQUIRE=1).
func StartRedisServer(t testing.TB, args ...string) int {
	t.Helper()
	port := FreePort(t)
	StartRedisServerOn(t, port, args...)
	return port
}

// StartRedisServerOn is StartRedisServer on a port the test chose.
func StartRedisServerOn(t testing.TB, port int, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "needs redis-server on PATH to start a Redis of its own (apt-get install redis-server)"
		if os.Getenv("PERSIST_TEST_REQUIRE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	start(t, dir, bin, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}, args...)...)
}

// start runs a server program of the test's own, its output in a log file
// in dir, and kills it when the test ends.
func start(t testing.TB, dir, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	log, err := os.Create(filepath.Join(dir, filepath.Base(bin)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = log.Close()
	})
}

// WaitPort waits until something listens on 127.0.0.1:port, for at most a
// minute (a bound for a server that never starts, not for a slow one).
func WaitPort(t testing.TB, port int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %d: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreePort returns a TCP port nothing listens on (at the time of asking).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Certs are PEM files made for one test: a CA, and a server certificate it
// signed for 127.0.0.1 and localhost.
type Certs struct {
	CAFile, CertFile, KeyFile string
}

// MakeCerts makes a CA and a server certificate signed by it, in the
// test's temporary directory.
func MakeCerts(t testing.TB) Certs {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "persistgen test CA " + ID()},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := Certs{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server.key")}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{c.CAFile, "CERTIFICATE", caDER}, {c.CertFile, "CERTIFICATE", leafDER}, {c.KeyFile, "EC PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// FerretDB2 is a MongoDB-wire server of the test's own.
type FerretDB2 struct {
	Port, TLSPort int // TLSPort is 0 without certificates
}

// StartFerretDB2 starts a MongoDB-wire server of the test's own: the
// faithful server's FerretDB binary on its PostgreSQL
// (PERSIST_TEST_FERRETDB2_BIN and PERSIST_TEST_FERRETDB2_PG, which make test
// sets where the kit is), enforcing logins when auth is set, and listening
// with TLS too when certs is not nil. Without the kit the test is skipped:
// neither the embedded FerretDB v1 nor a server given by URI can be
// restarted with a certificate or a login requirement the test chooses.
func StartFerretDB2(t testing.TB, auth bool, certs *Certs) FerretDB2 {
	t.Helper()
	bin, pg := os.Getenv("PERSIST_TEST_FERRETDB2_BIN"), os.Getenv("PERSIST_TEST_FERRETDB2_PG")
	if bin == "" || pg == "" {
		t.Skip("needs a MongoDB-wire server it can start with its own settings: the faithful server's FerretDB (PERSIST_TEST_FERRETDB2_BIN and PERSIST_TEST_FERRETDB2_PG, set by make test where ../shared/documentdb is)")
	}
	f := FerretDB2{Port: FreePort(t)}
	dir := t.TempDir()
	args := []string{"--postgresql-url=" + pg, "--listen-addr=127.0.0.1:" + strconv.Itoa(f.Port),
		"--telemetry=disable", "--debug-addr=-", "--state-dir=" + dir, "--log-level=warn"}
	if !auth {
		args = append(args, "--no-auth")
	}
	if certs != nil {
		f.TLSPort = FreePort(t)
		args = append(args, "--listen-tls=127.0.0.1:"+strconv.Itoa(f.TLSPort), "--listen-tls-cert-file="+certs.CertFile, "--listen-tls-key-file="+certs.KeyFile)
	}
	start(t, dir, bin, args...)
	WaitPort(t, f.Port)
	if f.TLSPort != 0 {
		WaitPort(t, f.TLSPort)
	}
	return f
}
