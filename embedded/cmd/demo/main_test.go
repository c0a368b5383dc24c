package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/persistgen/persistgen/embedded/servers"
	"github.com/persistgen/persistgen/repo"
)

// The main job, small: one day, two symbols, on the embedded servers. It
// must pass every check and show every domain with zero errors.
func TestDemoRunsCleanOnEmbeddedServers(t *testing.T) {
	t.Setenv("CC_MONGO_CONNECTION_STRING", "")
	var out bytes.Buffer
	if err := run([]string{"-days", "1", "-symbols", "BTCUSDT,ETHUSDT", "-data", t.TempDir()}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	if !strings.Contains(text, " 0 failed") {
		t.Fatalf("checks failed:\n%s", text)
	}
	// The live session's known-at read (the strategy domain's history)
	// returned an earlier state than the row's; the checks above include
	// that it is the version it names and differs from the row.
	if i := strings.Index(text, "known at "); i < 0 || !strings.Contains(text[i:], "; now: ") {
		t.Fatalf("no known-at read in the output:\n%s", text)
	}
	table := text[strings.Index(text, "domain "):]
	for _, s := range repo.Schemas() {
		found := false
		for _, line := range strings.Split(table, "\n") {
			f := strings.Fields(line)
			if len(f) >= 6 && f[0] == s.Domain {
				found = true
				if f[5] != "0" {
					t.Errorf("%s: %s errors", s.Domain, f[5])
				}
			}
		}
		if !found {
			t.Errorf("domain %s missing from the table:\n%s", s.Domain, table)
		}
	}
}

// minuteLine matches a line of the per-minute figures and captures the
// minutes run and the round trips per minute.
var minuteLine = regexp.MustCompile(`(series tier|without it): +(\d+) minutes, ([0-9.]+) round trips and \S+ per simulated minute`)

// minuteFigures returns the round trips per minute of the tier and
// without it, and how many minutes each ran, as text prints them.
func minuteFigures(t *testing.T, text string) (tier, plain float64, tierMinutes, plainMinutes int) {
	t.Helper()
	ms := minuteLine.FindAllStringSubmatch(text, -1)
	if len(ms) != 2 {
		t.Fatalf("want a series tier line and a without-it line:\n%s", text)
	}
	for _, m := range ms {
		n, _ := strconv.Atoi(m[2])
		rt, _ := strconv.ParseFloat(m[3], 64)
		if m[1] == "series tier" {
			tier, tierMinutes = rt, n
		} else {
			plain, plainMinutes = rt, n
		}
	}
	return tier, plain, tierMinutes, plainMinutes
}

// The demo reports backtest-kit's minute: through the series tier, a
// window read ahead serves the next thousand minutes (far under 0.01
// round trips a minute); without it, each of the three asks is a find.
func TestDemoPrintsTheMinuteFigures(t *testing.T) {
	t.Setenv("CC_MONGO_CONNECTION_STRING", "")
	var out bytes.Buffer
	if err := run([]string{"-days", "1", "-symbols", "BTCUSDT", "-data", t.TempDir()}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	tier, plain, n, _ := minuteFigures(t, out.String())
	if n != 1440-avgCandles || tier > 0.01 || plain != 3 {
		t.Fatalf("%d minutes at %g round trips through the tier (want 1435, at most 0.01), %g without (want 3):\n%s", n, tier, plain, out.String())
	}
}

// -month replays the month (a day of it here): every minute read, through
// the tier, from the candles the warm-up wrote.
func TestDemoMonthReplaysEveryMinute(t *testing.T) {
	t.Setenv("CC_MONGO_CONNECTION_STRING", "")
	var out bytes.Buffer
	if err := run([]string{"-month", "-month-days", "1", "-symbols", "SOLUSDT", "-data", t.TempDir()}, &out); err != nil {
		t.Fatalf("demo -month: %v\n%s", err, out.String())
	}
	text := out.String()
	if !strings.Contains(text, "warm-up: 1445 candles") {
		t.Fatalf("no warm-up of 1,445 candles:\n%s", text)
	}
	tier, plain, n, m := minuteFigures(t, text)
	// 1,440 minutes from the empty tier: two reads (each reading ahead
	// 1,000) fill it, 4,320 windows in all.
	if n != 1440 || m != noTierSample || tier > 0.01 || tier == 0 || plain != 3 {
		t.Fatalf("tier: %d minutes at %g round trips; without: %d at %g:\n%s", n, tier, m, plain, text)
	}
}

func TestDemoRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-days", "0"}, {"-every", "30m"}, {"-every", "90s"}, {"-month-days", "0"}} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// With passwords in every variable the demo reads, nothing it prints or
// returns shows them: the servers line shows the connection string
// redacted, and errors from the runtime are scrubbed.
func TestDemoNeverPrintsSecrets(t *testing.T) {
	ctx := context.Background()
	m, err := servers.StartMongo(ctx, servers.MongoOptions{SQLiteDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	r, err := servers.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	const mongoPW, redisPW = "mongo/Secret:1@x", "redis-Secret-2"
	u, err := url.Parse(m.URI)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("alice", mongoPW)
	host, port, _ := net.SplitHostPort(r.Addr)
	t.Setenv("CC_MONGO_CONNECTION_STRING", u.String())
	t.Setenv("CC_REDIS_HOST", host)
	t.Setenv("CC_REDIS_PORT", port)
	t.Setenv("CC_REDIS_USER", "bob")
	t.Setenv("CC_REDIS_PASSWORD", redisPW)
	var out bytes.Buffer
	err = run([]string{"-days", "1", "-symbols", "BTCUSDT"}, &out)
	all := out.String()
	if err != nil {
		all += "\n" + err.Error()
	}
	for _, s := range []string{mongoPW, redisPW} {
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s), url.UserPassword("alice", s).String()} {
			if strings.Contains(all, form) {
				t.Errorf("the demo shows %q:\n%s", form, all)
			}
		}
	}
	if !strings.Contains(all, "servers: from the environment (MongoDB mongodb://alice:xxxxx@") {
		t.Errorf("the servers line is missing or not redacted:\n%s", all)
	}
}

// syncBuffer is a bytes.Buffer safe for the demo's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// -metrics ADDR: the demo serves its OpenTelemetry metrics for Prometheus
// and keeps serving them after the replay until interrupted; a scrape
// finds each domain's calls and the operations' latency histogram.
func TestDemoServesMetricsForPrometheus(t *testing.T) {
	t.Setenv("CC_MONGO_CONNECTION_STRING", "")
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runContext(ctx, []string{"-days", "1", "-symbols", "BTCUSDT", "-data", t.TempDir(), "-metrics", "127.0.0.1:0"}, out, io.Discard)
	}()
	held := regexp.MustCompile(`metrics: still served at (\S+);`)
	var url string
	for deadline := time.Now().Add(3 * time.Minute); url == ""; time.Sleep(100 * time.Millisecond) {
		if m := held.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("the demo ended before serving its last metrics: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics line:\n%s", out.String())
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	calls := map[string]float64{}
	histogram := false
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "persistgen_operation_duration_seconds_bucket{") {
			histogram = true
		}
		if !strings.HasPrefix(line, "persistgen_operation_calls_total{") {
			continue
		}
		m := regexp.MustCompile(`persistgen_domain="([^"]+)".*persistgen_operation="([^"]+)".*\} (\S+)$`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("a calls line without domain and operation: %s", line)
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		calls[m[1]] += v
	}
	for _, s := range repo.Schemas() {
		if calls[s.Domain] <= 0 {
			t.Errorf("no calls scraped for %s: %v", s.Domain, calls)
		}
	}
	if !histogram {
		t.Errorf("no latency histogram in the scrape:\n%.2000s", body)
	}
}
