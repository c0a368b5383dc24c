package main

import (
	"bytes"
	"strings"
	"testing"

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

func TestDemoRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-days", "0"}, {"-every", "30m"}, {"-every", "90s"}} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
