package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/persistgen/persistgen/schema"
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
		"not a uri :secretish@":                                     "xxxxx",
		"just text":                                                 "just text",
		"mongodb://user:pa?ss@h/db":                                 "mongodb://user:xxxxx@h/db",
		"redis://:pa/ss@h:6379":                                     "redis://:xxxxx@h:6379",
		"redis://u:SEC#RET@h":                                       "redis://u:xxxxx@h",
		"mongodb://admin:admin@db/x":                                "mongodb://admin:xxxxx@db/x",
		"mongodb://mongo:mongodb@mongodb:27017/x":                   "mongodb://mongo:xxxxx@mongodb:27017/x",
		"mongodb://h/x?tlsCertificateKeyFilePassword=a&tls=true":    "mongodb://h/x?tlsCertificateKeyFilePassword=xxxxx&tls=true",
		"mongodb://h/x?authMechanismProperties=AWS_SESSION_TOKEN:t": "mongodb://h/x?authMechanismProperties=xxxxx",
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
	fmt.Fprintf(&b, "%v %+v %s %#v %d %x %q ", c, c, c, c, c, c, c)
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
	s := scrubber{"pw-long-9", "pw"}
	base := &OpError{Op: "ready", Key: "a/pw-long-9", Err: &causeError{kind: ErrUnauthorized, cause: errors.New("refused pw-long-9 here, pw untouched")}}
	err := s.scrubOp(base)
	var op *OpError
	if !errors.As(err, &op) || op.Op != "ready" || !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("chain lost: %#v", err)
	}
	if !strings.Contains(err.Error(), "refused xxxxx here, pw untouched") {
		t.Fatalf("not scrubbed, or a short secret mangled the text: %v", err)
	}
	if op.Key != "a/pw-long-9" {
		t.Fatalf("the key (the caller's data) was changed: %q", op.Key)
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

// A Conn prints its servers and database, never its configuration's secrets.
func TestConnNeverShowsSecrets(t *testing.T) {
	c, err := Open(Config{MongoURI: "mongodb://alice:conn-mongo-pw@db:27017/x", RedisPassword: "conn-redis-pw"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v %+v %#v %s %d ", c, c, c, c, c)
	fmt.Fprintf(&b, "%+v ", struct{ C *Conn }{c})
	slog.New(slog.NewTextHandler(&b, nil)).Info("conn", "conn", c)
	out := b.String()
	if strings.Contains(out, "conn-mongo-pw") || strings.Contains(out, "conn-redis-pw") || !strings.Contains(out, "db:27017") {
		t.Fatalf("%s", out)
	}
}

// A connection string that does not parse is reported without the
// parser's text when it holds a password (parsers quote pieces of it).
func TestUnparsableURIsShowNoPassword(t *testing.T) {
	for _, cfg := range []Config{
		{MongoURI: "mongodb://u:p%zzword-1@db/x"},
		{MongoURI: "mongodb://db/x", RedisURL: "redis://u:TOPSECRET-2@[::1:6379"},
		{MongoURI: "mongodb://db/x", RedisURL: "redis://:pa/ss-word-3@h:6379"},
	} {
		_, err := Open(cfg)
		if err == nil {
			t.Fatalf("%v opened", cfg)
		}
		var d *schema.DetailError
		all := err.Error()
		if errors.As(err, &d) {
			all += d.Msg
		}
		for _, secret := range []string{"p%zzword-1", "zzword", "TOPSECRET-2", "pa/ss-word-3", "ss-word"} {
			if strings.Contains(all, secret) {
				t.Fatalf("%q shown: %s", secret, all)
			}
		}
	}
}

// A URL with a password in CC_REDIS_HOST is refused at Open, without the
// password in the error (it would otherwise reach go-redis's dial errors
// and every log line that names the address).
func TestOpenRefusesAURLAsTheRedisHost(t *testing.T) {
	for _, host := range []string{"redis://:S3cretRedis@127.0.0.1", "user:S3cretRedis@127.0.0.1"} {
		cfg := configFrom(func(k string) (string, bool) {
			if k == "CC_REDIS_HOST" {
				return host, true
			}
			return "", false
		})
		_, err := Open(cfg)
		if err == nil || !errors.Is(err, ErrInvalidArgument) || strings.Contains(err.Error(), "S3cretRedis") {
			t.Errorf("CC_REDIS_HOST=%q: Open = %v", host, err)
		}
	}
}
