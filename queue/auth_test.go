package queue

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/simgate/simgate/natsauth"
)

func TestEmbeddedAuth(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	tok := filepath.Join(dir, "tok")
	if os.WriteFile(pw, []byte("embedded-pw-7\n"), 0o600) != nil || os.WriteFile(tok, []byte("embedded-tok-8\n"), 0o600) != nil {
		t.Fatal("cannot write secrets")
	}
	for _, cfg := range []EmbeddedConfig{
		{Auth: natsauth.Embedded{User: "simgate", PasswordFile: pw}},
		{Auth: natsauth.Embedded{TokenFile: tok}},
	} {
		cfg.Listen, cfg.StoreDir, cfg.Name = "127.0.0.1:0", t.TempDir(), "auth"
		ns, err := StartEmbedded(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ns.Shutdown)
		opts, err := cfg.ClientOptions()
		if err != nil {
			t.Fatal(err)
		}
		// The daemon's in-process connection and a network client.
		for _, url := range []string{"", ns.ClientURL()} {
			o := opts
			if url == "" {
				o = append(o, nats.InProcessServer(ns))
			}
			nc, err := nats.Connect(url, o...)
			if err != nil {
				t.Fatalf("%+v %q: %v", cfg, url, err)
			}
			nc.Close()
		}
		// Without credentials: refused, and the error holds no secret.
		nc, err := nats.Connect(ns.ClientURL())
		if err == nil {
			nc.Close()
			t.Fatalf("%+v: connected without credentials", cfg)
		}
		if s := err.Error(); strings.Contains(s, "embedded-pw-7") || strings.Contains(s, "embedded-tok-8") {
			t.Errorf("error %q contains a secret", err)
		}
		ns.Shutdown()
		ns.WaitForShutdown()
	}
	if _, err := StartEmbedded(EmbeddedConfig{Listen: "-", StoreDir: t.TempDir(), Auth: natsauth.Embedded{PasswordFile: pw}}); err == nil {
		t.Error("password file without user accepted")
	}
}
