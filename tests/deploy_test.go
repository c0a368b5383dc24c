package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/persistgen/persistgen/internal/testenv"
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

// The sharded deployment (docker-compose.sharded.yml, make up-sharded):
// valid for docker compose, every server health-gated, each step started
// once what it needs is healthy or done, passwords and the key file from
// secrets only, and the scripts the services run present and well formed.
// Nothing here starts it: there is no Docker engine on the test machines.
func TestShardedComposeFileIsValidAndOrdered(t *testing.T) {
	t.Parallel()
	cmd := composeCommand(t)
	root := testenv.Root(t)
	c := exec.Command(cmd[0], append(cmd[1:], "-f", "docker-compose.sharded.yml", "config")...)
	c.Dir = root
	c.Env = append(os.Environ(), "MONGO_USER=")
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("compose config: %v\n%s", err, out)
	}
	type service struct {
		Image       string         `yaml:"image"`
		Build       any            `yaml:"build"`
		Command     any            `yaml:"command"`
		Entrypoint  any            `yaml:"entrypoint"`
		Healthcheck map[string]any `yaml:"healthcheck"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Environment map[string]any `yaml:"environment"`
		Secrets     []any          `yaml:"secrets"`
		Volumes     []any          `yaml:"volumes"`
	}
	var cfg struct {
		Services map[string]service `yaml:"services"`
		Secrets  map[string]any     `yaml:"secrets"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	sv := cfg.Services
	wantCmd := map[string][]string{
		"cfg":    {"mongod", "--configsvr", "--replSet cfg", "--keyFile"},
		"shard1": {"mongod", "--shardsvr", "--replSet shard1", "--keyFile"},
		"shard2": {"mongod", "--shardsvr", "--replSet shard2", "--keyFile"},
		"mongos": {"mongos", "--configdb cfg/cfg:27017", "--keyFile"},
	}
	for name, parts := range wantCmd {
		s := sv[name]
		if !strings.HasPrefix(s.Image, "mongo:8") || s.Healthcheck == nil {
			t.Errorf("%s: image %q, health check %v", name, s.Image, s.Healthcheck)
		}
		for _, p := range parts {
			if !strings.Contains(toString(s.Command), p) {
				t.Errorf("%s: command %q lacks %q", name, toString(s.Command), p)
			}
		}
	}
	need := func(name string, deps map[string]string) {
		for d, cond := range deps {
			if got := sv[name].DependsOn[d].Condition; got != cond {
				t.Errorf("%s depends on %s with %q; want %q", name, d, got, cond)
			}
		}
	}
	need("mongos", map[string]string{"cfg": "service_healthy", "shard1": "service_healthy", "shard2": "service_healthy"})
	redisNodes := map[string]string{}
	for i := 1; i <= 6; i++ {
		n := fmt.Sprintf("redis%d", i)
		s := sv[n]
		if !strings.HasPrefix(s.Image, "redis:7.4") || s.Healthcheck == nil || len(s.Volumes) < 2 {
			t.Errorf("%s: image %q, health check %v, volumes %v", n, s.Image, s.Healthcheck, s.Volumes)
		}
		redisNodes[n] = "service_healthy"
	}
	need("redis-cluster", redisNodes)
	need("plan", map[string]string{"mongos": "service_healthy"})
	need("demo", map[string]string{"plan": "service_completed_successfully", "redis-cluster": "service_completed_successfully"})
	if p := toString(sv["plan"].Entrypoint); !strings.Contains(p, "persistgen-ops plan") || !strings.Contains(p, "-apply") {
		t.Errorf("plan runs %q; want persistgen-ops plan ... -apply", p)
	}
	for _, n := range []string{"plan", "demo"} {
		env := sv[n].Environment
		if !strings.Contains(toString(env["CC_MONGO_CONNECTION_STRING"]), "@mongos:27017/") || len(strings.Split(toString(env["CC_REDIS_CLUSTER"]), ",")) != 3 ||
			env["CC_MONGO_PASSWORD_FILE"] == nil || env["CC_REDIS_PASSWORD_FILE"] == nil {
			t.Errorf("%s's environment %v: want mongos, three cluster seeds and the passwords' files", n, env)
		}
	}
	for name, s := range sv {
		for k, v := range s.Environment {
			if strings.Contains(k, "PASSWORD") && !strings.HasSuffix(k, "_FILE") || strings.Contains(toString(v), ":persistgen@") {
				t.Errorf("%s: %s puts a password in a variable", name, k)
			}
		}
		if c := toString(s.Command); strings.Contains(c, "--requirepass") || strings.Contains(c, "--masterauth") {
			t.Errorf("%s: a password on the command line: %q", name, c)
		}
	}
	for _, n := range []string{"mongo_password", "redis_password", "mongo_keyfile"} {
		if _, ok := cfg.Secrets[n]; !ok {
			t.Errorf("secret %s is not declared", n)
		}
	}
	// The image the plan and demo services run holds the command and the
	// manifest they name.
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	must(t, err)
	for _, want := range []string{"./cmd/persistgen-ops", "/usr/local/bin/", "/etc/persistgen/domains.yaml"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("the Dockerfile does not mention %s", want)
		}
	}
	// The scripts the services run: present, and well formed.
	dir := filepath.Join(root, "deploy", "sharded")
	for _, f := range []string{"redis-node.sh", "redis-cluster-init.sh"} {
		if out, err := exec.Command("sh", "-n", filepath.Join(dir, f)).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", f, err, out)
		}
	}
	for _, f := range []string{"rs-init.js", "mongos-init.js"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		must(t, err)
		if node, err := exec.LookPath("node"); err == nil {
			if out, err := exec.Command(node, "--check", filepath.Join(dir, f)).CombinedOutput(); err != nil {
				t.Errorf("node --check %s: %v\n%s", f, err, out)
			}
		}
		if f == "mongos-init.js" && (!strings.Contains(string(b), "/run/secrets/mongo_password") || !strings.Contains(string(b), "addShard")) {
			t.Errorf("%s should read the password from its secret and add the shards", f)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "scripts", "secrets.sh")); err != nil || !strings.Contains(string(b), "mongo_keyfile") {
		t.Errorf("scripts/secrets.sh does not make the key file: %v", err)
	}
}
