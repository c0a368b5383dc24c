package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/persistgen/persistgen/tests/testenv"
)

// composeCommand returns docker compose (v2) or docker-compose (v1), or
// skips: validating the file needs one of them, not a Docker engine.
func composeCommand(t *testing.T) []string {
	t.Helper()
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	t.Skip("neither `docker compose` nor docker-compose is installed (apt-get install docker-compose validates without an engine)")
	return nil
}

func TestDockerComposeFileIsValidAndHealthGated(t *testing.T) {
	t.Parallel()
	cmd := composeCommand(t)
	root := testenv.Root(t)
	run := func(args ...string) string {
		c := exec.Command(cmd[0], append(cmd[1:], args...)...)
		c.Dir = root
		c.Env = append(os.Environ(), "MONGO_USER=")
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", strings.Join(cmd, " "), strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("config", "-q")
	var cfg struct {
		Services map[string]struct {
			Image       string         `yaml:"image"`
			Build       any            `yaml:"build"`
			Healthcheck map[string]any `yaml:"healthcheck"`
			DependsOn   map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
			Environment map[string]any `yaml:"environment"`
			Command     any            `yaml:"command"`
			Volumes     []any          `yaml:"volumes"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
		Secrets map[string]any `yaml:"secrets"`
	}
	if err := yaml.Unmarshal([]byte(run("config")), &cfg); err != nil {
		t.Fatal(err)
	}
	mongo, redis, demo := cfg.Services["mongo"], cfg.Services["redis"], cfg.Services["demo"]
	if !strings.HasPrefix(mongo.Image, "mongo:8") || !strings.HasPrefix(redis.Image, "redis:7.4") {
		t.Errorf("images: mongo %q, redis %q; want MongoDB 8 and Redis 7.4", mongo.Image, redis.Image)
	}
	for name, s := range map[string]struct {
		hc  map[string]any
		vol int
	}{"mongo": {mongo.Healthcheck, len(mongo.Volumes)}, "redis": {redis.Healthcheck, len(redis.Volumes)}} {
		if s.hc == nil || s.vol == 0 {
			t.Errorf("%s: health check %v, %d volumes", name, s.hc, s.vol)
		}
	}
	if _, ok := cfg.Volumes["mongo-data"]; !ok {
		t.Errorf("no named volume mongo-data: %v", cfg.Volumes)
	}
	if _, ok := cfg.Volumes["redis-data"]; !ok {
		t.Errorf("no named volume redis-data: %v", cfg.Volumes)
	}
	if demo.Build == nil || demo.DependsOn["mongo"].Condition != "service_healthy" || demo.DependsOn["redis"].Condition != "service_healthy" {
		t.Errorf("demo: build %v, depends_on %+v; want it built here and started once both are healthy", demo.Build, demo.DependsOn)
	}
	// Passwords are Docker secrets: in no variable and no command line.
	if mongo.Environment["MONGO_INITDB_ROOT_PASSWORD_FILE"] != "/run/secrets/mongo_password" || mongo.Environment["MONGO_INITDB_ROOT_PASSWORD"] != nil {
		t.Errorf("mongo takes its password from %v; want the secret's file", mongo.Environment)
	}
	for _, v := range []string{"CC_MONGO_CONNECTION_STRING", "CC_MONGO_PASSWORD_FILE", "CC_REDIS_HOST", "CC_REDIS_PORT", "CC_REDIS_PASSWORD_FILE"} {
		if demo.Environment[v] == nil {
			t.Errorf("demo lacks %s", v)
		}
	}
	for name, svc := range map[string]map[string]any{"mongo": mongo.Environment, "redis": redis.Environment, "demo": demo.Environment} {
		for k, v := range svc {
			if s := toString(v); (strings.Contains(k, "PASSWORD") || strings.Contains(k, "AUTH")) && !strings.HasSuffix(k, "_FILE") ||
				strings.Contains(s, ":persistgen@") {
				t.Errorf("%s: %s=%q puts a password in a variable", name, k, s)
			}
		}
	}
	if c := toString(redis.Command); strings.Contains(c, "--requirepass") || !strings.Contains(c, "/run/secrets/redis_password") {
		t.Errorf("redis command %q: the password must come from the secret's file, not the command line", c)
	}
	for _, n := range []string{"mongo_password", "redis_password"} {
		if _, ok := cfg.Secrets[n]; !ok {
			t.Errorf("secret %s is not declared: %v", n, cfg.Secrets)
		}
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case []any:
		var parts []string
		for _, p := range x {
			parts = append(parts, toString(p))
		}
		return strings.Join(parts, " ")
	case string:
		return x
	}
	return ""
}

func TestDockerfileIsMultiStageAndNonRoot(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(testenv.Root(t), "Dockerfile"))
	must(t, err)
	var froms []string
	user := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "FROM" {
			froms = append(froms, f[1])
			user = ""
		}
		if len(f) >= 2 && f[0] == "USER" {
			user = f[1]
		}
	}
	if len(froms) < 2 {
		t.Fatalf("stages %v; want a build stage and a final stage", froms)
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		t.Fatalf("final stage runs as %q; want a non-root user", user)
	}
}
