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
		c.Env = append(os.Environ(), "MONGO_PASSWORD=", "REDIS_PASSWORD=")
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
	if !strings.Contains(toString(redis.Command), "--requirepass persistgen") || mongo.Environment["MONGO_INITDB_ROOT_PASSWORD"] != "persistgen" {
		t.Errorf("passwords not set: redis %v, mongo %v", redis.Command, mongo.Environment)
	}
	for _, v := range []string{"CC_MONGO_CONNECTION_STRING", "CC_REDIS_HOST", "CC_REDIS_PORT", "CC_REDIS_PASSWORD"} {
		if demo.Environment[v] == nil {
			t.Errorf("demo lacks %s", v)
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
