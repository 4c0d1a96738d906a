package natsauth

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/simgate/simgate/internal/testtls"
)

// envServer makes the test binary a NATS server: its value is the path of
// a nats-server configuration file.
const envServer = "SIMGATE_TEST_NATS_SERVER"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(envServer); cfg != "" {
		os.Exit(runServer(cfg))
	}
	os.Exit(m.Run())
}

// runServer runs a NATS server from the configuration file at path, prints
// "ready <host:port>" once it takes connections, and exits when stdin closes
// (the test ended, or died) or the server stops.
func runServer(path string) int {
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		return 2
	}
	opts.NoSigs = true
	ns, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		return 2
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(os.Stderr, "server not ready after 10s")
		return 3
	}
	fmt.Printf("ready %s\n", ns.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		ns.Shutdown()
	}()
	ns.WaitForShutdown()
	return 0
}

// startServer starts a NATS server in a separate process with the given
// configuration (a random loopback port is added) and returns its URL.
func startServer(t *testing.T, conf string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nats-server.conf")
	conf = "listen: \"127.0.0.1:-1\"\n" + conf
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envServer+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		defer close(ready)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- addr
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case addr, ok := <-ready:
		if !ok {
			t.Fatal("nats server process exited before it was ready")
		}
		return "nats://" + addr
	case <-time.After(20 * time.Second):
		t.Fatal("nats server process not ready after 20s")
	}
	return ""
}

// writeSecret writes a 0600 file in dir and returns its path.
func writeSecret(t *testing.T, dir, name string, body []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustWork connects with c and round-trips a message.
func mustWork(t *testing.T, url string, c Client) {
	t.Helper()
	opts, err := ClientOptions(c)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("auth.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("auth.test", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no message: %v", err)
	}
	if string(msg.Data) != "hello" {
		t.Fatalf("got %q", msg.Data)
	}
}

// mustFail connects with c and expects a quick error that does not
// contain any of secrets.
func mustFail(t *testing.T, url string, c Client, secrets ...string) {
	t.Helper()
	opts, err := ClientOptions(c)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	nc, err := nats.Connect(url, opts...)
	if err == nil {
		nc.Close()
		t.Fatal("connected with wrong credentials")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failing took %s", d)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains a secret", err)
		}
	}
	t.Logf("wrong credentials: %v", err)
}

func TestUserPassword(t *testing.T) {
	url := startServer(t, `authorization { user: simgate, password: "pa$$-w0rd" }`)
	dir := t.TempDir()
	good := writeSecret(t, dir, "good", []byte("pa$$-w0rd\n"))
	bad := writeSecret(t, dir, "bad", []byte("wrong-pw-1234\n"))
	mustWork(t, url, Client{User: "simgate", PasswordFile: good})
	mustWork(t, url, Client{User: "simgate", Password: "pa$$-w0rd"})
	mustFail(t, url, Client{User: "simgate", PasswordFile: bad}, "wrong-pw-1234", "pa$$-w0rd")
	mustFail(t, url, Client{}, "pa$$-w0rd")
}

func TestToken(t *testing.T) {
	url := startServer(t, `authorization { token: "tok-5ecret-42" }`)
	dir := t.TempDir()
	good := writeSecret(t, dir, "good", []byte("tok-5ecret-42"))
	bad := writeSecret(t, dir, "bad", []byte("tok-wrong-99\n"))
	mustWork(t, url, Client{TokenFile: good})
	mustWork(t, url, Client{Token: "tok-5ecret-42"})
	mustFail(t, url, Client{TokenFile: bad}, "tok-wrong-99", "tok-5ecret-42")
}

func userSeedFile(t *testing.T, dir, name string) (pub, path string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ = kp.PublicKey()
	return pub, writeSecret(t, dir, name, seed)
}

func TestNkey(t *testing.T) {
	dir := t.TempDir()
	pub, good := userSeedFile(t, dir, "good.nk")
	_, bad := userSeedFile(t, dir, "bad.nk")
	url := startServer(t, fmt.Sprintf("authorization { users = [ {nkey: %s} ] }", pub))
	mustWork(t, url, Client{NkeySeedFile: good})
	seed, _ := os.ReadFile(bad)
	mustFail(t, url, Client{NkeySeedFile: bad}, string(seed))
}

func TestCreds(t *testing.T) {
	op, _ := nkeys.CreateOperator()
	opPub, _ := op.PublicKey()
	opJWT, err := jwt.NewOperatorClaims(opPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	account := func() (nkeys.KeyPair, string, string) {
		kp, _ := nkeys.CreateAccount()
		pub, _ := kp.PublicKey()
		tok, err := jwt.NewAccountClaims(pub).Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		return kp, pub, tok
	}
	sys, sysPub, sysJWT := account()
	_ = sys
	acc, accPub, accJWT := account()
	// A second account the server does not know.
	other, _, _ := account()

	dir := t.TempDir()
	creds := func(name string, issuer nkeys.KeyPair) (string, string) {
		u, _ := nkeys.CreateUser()
		upub, _ := u.PublicKey()
		seed, _ := u.Seed()
		tok, err := jwt.NewUserClaims(upub).Encode(issuer)
		if err != nil {
			t.Fatal(err)
		}
		b, err := jwt.FormatUserConfig(tok, seed)
		if err != nil {
			t.Fatal(err)
		}
		return writeSecret(t, dir, name, b), string(seed)
	}
	good, _ := creds("good.creds", acc)
	bad, badSeed := creds("bad.creds", other)

	url := startServer(t, fmt.Sprintf(`
operator: %s
system_account: %s
resolver: MEMORY
resolver_preload: {
  %s: %s
  %s: %s
}
`, opJWT, sysPub, sysPub, sysJWT, accPub, accJWT))
	mustWork(t, url, Client{CredsFile: good})
	mustFail(t, url, Client{CredsFile: bad}, badSeed)
}

func TestTLSClientCert(t *testing.T) {
	dir := t.TempDir()
	p := testtls.NewPKI(t, dir, "good")
	rogue := testtls.NewPKI(t, dir, "rogue")
	url := startServer(t, fmt.Sprintf(`tls {
  cert_file: %q
  key_file: %q
  ca_file: %q
  verify: true
  timeout: 2
}`, p.ServerCert, p.ServerKey, p.CAFile))

	mustWork(t, url, Client{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey})
	// The certificate also names nats.test: ServerName checks that name.
	mustWork(t, url, Client{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey, ServerName: "nats.test"})

	key, _ := os.ReadFile(rogue.ClientKey)
	t.Run("no client certificate", func(t *testing.T) {
		mustFail(t, url, Client{CAFile: p.CAFile})
	})
	t.Run("client certificate of another CA", func(t *testing.T) {
		mustFail(t, url, Client{CAFile: p.CAFile, CertFile: rogue.ClientCert, KeyFile: rogue.ClientKey}, string(key))
	})
	t.Run("server not trusted", func(t *testing.T) {
		mustFail(t, url, Client{CAFile: rogue.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey})
	})
	t.Run("wrong server name", func(t *testing.T) {
		mustFail(t, url, Client{CAFile: p.CAFile, CertFile: p.ClientCert, KeyFile: p.ClientKey, ServerName: "other.test"})
	})
}

func TestClientOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	const secret = "very-secret-value-123"
	garbage := writeSecret(t, dir, "garbage", []byte(secret+"\n"))
	empty := writeSecret(t, dir, "empty", []byte("\n"))
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		c    Client
		want string
	}{
		{"missing password file", Client{User: "u", PasswordFile: missing}, missing},
		{"empty token file", Client{TokenFile: empty}, empty},
		{"password without user", Client{PasswordFile: garbage}, "PasswordFile needs User"},
		{"user without password", Client{User: "u"}, "User needs PasswordFile or Password"},
		{"two methods", Client{TokenFile: garbage, CredsFile: garbage}, "TokenFile, CredsFile: use at most one"},
		{"malformed nkey seed", Client{NkeySeedFile: garbage}, garbage},
		{"malformed creds", Client{CredsFile: garbage}, garbage},
		{"missing creds", Client{CredsFile: missing}, missing},
		{"malformed CA", Client{CAFile: garbage}, garbage},
		{"missing CA", Client{CAFile: missing}, missing},
		{"cert without key", Client{CertFile: garbage}, "CertFile and KeyFile: set both or neither"},
		{"malformed cert", Client{CertFile: garbage, KeyFile: garbage}, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ClientOptions(tc.c)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the file's contents", err)
			}
		})
	}
}
