package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactURI(t *testing.T) {
	for in, want := range map[string]string{
		"mongodb://alice:s3cret@db:27017/x?authSource=admin":        "mongodb://alice:xxxxx@db:27017/x?authSource=admin",
		"mongodb://alice:p%40ss%2Fw@h1,h2/x":                        "mongodb://alice:xxxxx@h1,h2/x",
		"mongodb+srv://u:a@b@cluster/x":                             "mongodb+srv://u:xxxxx@cluster/x",
		"redis://:pw@cache:6379/0":                                  "redis://:xxxxx@cache:6379/0",
		"rediss://user:pw2@cache:6380":                              "rediss://user:xxxxx@cache:6380",
		"mongodb://h/x?tls=true&tlsCertificateKeyFilePassword=kpw9": "mongodb://h/x?tls=true&tlsCertificateKeyFilePassword=xxxxx",
		"mongodb://alice@db/x":                                      "mongodb://alice@db/x",
		"mongodb://db:27017/":                                       "mongodb://db:27017/",
		"not a uri :secretish@":                                     "not a uri :xxxxx@",
	} {
		if got := RedactURI(in); got != want {
			t.Errorf("RedactURI(%q) = %q, want %q", in, got, want)
		}
	}
}

// A Config printed or logged in any way shows no password.
func TestConfigNeverShowsSecrets(t *testing.T) {
	c := Config{MongoURI: "mongodb://alice:mongo-pw-1@db/x", RedisURL: "redis://:redis-url-pw-2@c/0", RedisPassword: "redis-pw-3", RedisUsername: "bob"}
	var b strings.Builder
	fmt.Fprintf(&b, "%v %+v %s %#v ", c, c, c, c)
	fmt.Fprintf(&b, "%v ", &c)
	slog.New(slog.NewTextHandler(&b, nil)).Info("cfg", "config", c)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("cfg", "config", c)
	out := b.String()
	for _, s := range []string{"mongo-pw-1", "redis-url-pw-2", "redis-pw-3"} {
		if strings.Contains(out, s) {
			t.Fatalf("%q shown:\n%s", s, out)
		}
	}
	for _, s := range []string{"alice", "bob", "db/x"} {
		if !strings.Contains(out, s) {
			t.Fatalf("%q (not a secret) hidden:\n%s", s, out)
		}
	}
	if c.RedisPassword != "redis-pw-3" {
		t.Fatal("printing changed the Config")
	}
}

// Scrubbing keeps the error chain and the *OpError.
func TestScrubKeepsTheChain(t *testing.T) {
	s := scrubber{"pw-9"}
	base := &OpError{Op: "ready", Err: &causeError{kind: ErrUnauthorized, cause: errors.New("refused pw-9 here")}}
	err := s.scrubOp(base)
	var op *OpError
	if !errors.As(err, &op) || op.Op != "ready" || !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("chain lost: %#v", err)
	}
	if strings.Contains(err.Error(), "pw-9") || !strings.Contains(err.Error(), "refused xxxxx here") {
		t.Fatalf("not scrubbed: %v", err)
	}
	if s.scrub(errors.New("clean")).Error() != "clean" || s.scrub(nil) != nil {
		t.Fatal("scrub changed a clean error")
	}
	// Opening with a malformed connection string shows no password.
	_, err = Open(Config{MongoURI: "mongodb://alice:open-pw-7@db:notaport/x"})
	if err == nil || strings.Contains(err.Error(), "open-pw-7") || !strings.Contains(err.Error(), "alice:xxxxx@") {
		t.Fatalf("Open = %v", err)
	}
	_, err = Open(Config{MongoURI: "mongodb://db/x", RedisURL: "redis://:url-pw-8@cache:notaport/0"})
	if err == nil || strings.Contains(err.Error(), "url-pw-8") {
		t.Fatalf("Open = %v", err)
	}
}
