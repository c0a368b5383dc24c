package main

import (
	"strings"
	"testing"
)

const sampleOutput = `goos: linux
cpu: Test CPU
bench-env: mongo=ferretdb x; redis=7; writechunk=40
BenchmarkCandleWindow/500/floor-2   	5	 100 ns/op	 1.000 mongo/op	 0 redis/op	 1.000 rt/op	 10 cpu-ns/op	 50 B/op	 5 allocs/op
BenchmarkCandleWindow/500/upstream-2	1	6000 ns/op	 500 mongo/op	 500 redis/op	 1000 rt/op	 40 cpu-ns/op	 90 B/op	 9 allocs/op
BenchmarkCandleWindow/500/ours-2    	5	 105 ns/op	 1.000 mongo/op	 0 redis/op	 1.000 rt/op	 11 cpu-ns/op	 60 B/op	 6 allocs/op
bench-env: mongo=ferretdb x; redis=7; writechunk=40
BenchmarkCandleWindow/500/ours-2    	5	 100 ns/op	 1.000 mongo/op	 0 redis/op	 1.000 rt/op	 11 cpu-ns/op	 60 B/op	 6 allocs/op
BenchmarkCandleWindow/500/upstream-2	1	4000 ns/op	 500 mongo/op	 500 redis/op	 1000 rt/op	 40 cpu-ns/op	 90 B/op	 9 allocs/op
BenchmarkCandleWindow/500/floor-2   	5	 125 ns/op	 1.000 mongo/op	 0 redis/op	 1.000 rt/op	 10 cpu-ns/op	 50 B/op	 5 allocs/op
BenchmarkGenerate/shipped-2         	100	 9000000 ns/op	 3000000 B/op	 70000 allocs/op
`

const cachedOutput = `cpu: Test CPU
bench-env: mongo=x; redis=7; writechunk=1
bench-memory: identity 136 B, value 784 B, none 0 B
BenchmarkWarmRead/floor-2 	5	 400 ns/op	 1.000 mongo/op	 0 redis/op	 1.000 rt/op	 10 cpu-ns/op	 50 B/op	 5 allocs/op
BenchmarkWarmRead/ours-2  	5	 500 ns/op	 1.000 mongo/op	 1.000 redis/op	 2.000 rt/op	 10 cpu-ns/op	 50 B/op	 5 allocs/op
BenchmarkWarmRead/cached-2	5	 100 ns/op	 0 mongo/op	 1.000 redis/op	 1.000 rt/op	 10 cpu-ns/op	 50 B/op	 5 allocs/op
BenchmarkWarmRead/local-2	5	 3 ns/op	 0 mongo/op	 0 redis/op	 0 rt/op	 3 cpu-ns/op	 50 B/op	 5 allocs/op
BenchmarkReplayStep/ours-2  	5	 900 ns/op	 5.000 mongo/op	 6.000 redis/op	 11.000 rt/op	 10 cpu-ns/op	 50 B/op	 5 allocs/op
BenchmarkReplayStep/cached-2	5	 900 ns/op	 5.000 mongo/op	 6.000 redis/op	 11.000 rt/op	 10 cpu-ns/op	 50 B/op	 5 allocs/op
BenchmarkReplayStep/local-2	5	 800 ns/op	 4.000 mongo/op	 5.000 redis/op	 9.000 rt/op	 10 cpu-ns/op	 50 B/op	 5 allocs/op
BenchmarkCandleWrite500/ours-2  	5	 500 ns/op	 1.000 mongo/op	 1.000 redis/op	 2.000 rt/op	 10 cpu-ns/op	 50 B/op	 5 allocs/op
BenchmarkCandleWrite500/cached-2	5	 400 ns/op	 1.000 mongo/op	 1.000 redis/op	 2.000 rt/op	 10 cpu-ns/op	 50 B/op	 5 allocs/op
`

// The cache-modes table and its targets: value's and local's warm reads
// against the floor, no Redis in mode none and the replay step's ratio
// (both missed here on purpose).
func TestCacheModesReport(t *testing.T) {
	d, err := parse(strings.NewReader(cachedOutput))
	if err != nil {
		t.Fatal(err)
	}
	md := render(d, "300ms", "")
	for _, want := range []string{"## Cache modes", "| WarmRead | 1 · 2 · 1 · 0 | 1 · 1 · 0 |", "value mode floor/cached 4.0 ≥ 3 (one Redis round trip): met",
		"local mode floor/local 133 ≥ 100 (no round trip): met", "WarmRead: local mode 0 round trips = 0: met",
		"| CandleWrite500 | 0 · 2 · 2 · - | 1 · 1 · - |",
		"ReplayStep: identity 11 round trips / local 9 = 1.2 ≥ 3: **missed**",
		"CandleWrite500: mode none 1 Redis round trips = 0", "Memory per cached row (`MEMORY USAGE`, one signal row): identity 136 B, value 784 B, none 0 B"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(md, "CandleWrite500: mode none 1 Redis round trips = 0, 2 round trips in all (identity: 2): **missed**") {
		t.Errorf("the mode-none target was not missed:\n%s", md)
	}
}

func TestRatiosArePairedWithinEachRepetition(t *testing.T) {
	d, err := parse(strings.NewReader(sampleOutput))
	if err != nil {
		t.Fatal(err)
	}
	if d.reps != 2 || d.cpu != "Test CPU" || len(d.gen) != 1 {
		t.Fatalf("parsed %d reps, cpu %q, %d generator rows", d.reps, d.cpu, len(d.gen))
	}
	ours, floor, up := d.get(&d.results, "CandleWindow/500", "ours"), d.get(&d.results, "CandleWindow/500", "floor"), d.get(&d.results, "CandleWindow/500", "upstream")
	of := ratios(ours, floor)
	if len(of) != 2 || of[0] != 1.05 || of[1] != 0.8 {
		t.Fatalf("ours/floor per repetition = %v, want [1.05 0.8]", of)
	}
	uo := ratios(up, ours)
	if median(uo) != (6000.0/105+40)/2 {
		t.Fatalf("upstream/ours median = %v", median(uo))
	}
	md := render(d, "300ms", "")
	for _, want := range []string{"| CandleWindow/500 | 1 · 1000 · 1 |", "upstream/ours 48.6 ≥ 50: **missed**", "ours/floor 0.93 ≤ 1.10 (same round trips): met", "| shipped | 9.00 ms | 3.0 MB | 70000 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if d.failed != 1 {
		t.Errorf("%d missed targets counted, want 1", d.failed)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// The throughput table (operations per second per client count, and the
// growth against one client) and the size estimate's rows.
func TestThroughputReport(t *testing.T) {
	d, err := parse(strings.NewReader(`bench-env: x
bench-estimate: | signal | 136 MB | 832 MB | 0 | 1 MB | ;; | candle | 152 MB | - | 0 | 2 MB |
BenchmarkThroughput/1-2 	100	 1000 ns/op	 1000 ops/s
BenchmarkThroughput/4-2 	100	 500 ns/op	 2500 ops/s
bench-env: x
BenchmarkThroughput/1-2 	100	 1000 ns/op	 1200 ops/s
BenchmarkThroughput/4-2 	100	 500 ns/op	 2700 ops/s
`))
	if err != nil {
		t.Fatal(err)
	}
	md := render(d, "1x", "")
	for _, want := range []string{"## Throughput", "| 1 | 1100 | 1100 | 1.00x |", "| 4 | 2600 | 650 | 2.36x |",
		"## Size per million rows", "| signal | 136 MB | 832 MB | 0 | 1 MB |\n| candle | 152 MB | - | 0 | 2 MB |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// Telemetry on against off, paired within each repetition.
func TestTelemetryReport(t *testing.T) {
	d, err := parse(strings.NewReader(`bench-env: x
BenchmarkTelemetry/LocalGet/off-2 	100	 6000 ns/op	 1368 B/op	 20 allocs/op
BenchmarkTelemetry/LocalGet/on-2 	100	 9000 ns/op	 3232 B/op	 38 allocs/op
bench-env: x
BenchmarkTelemetry/LocalGet/off-2 	100	 5000 ns/op	 1368 B/op	 20 allocs/op
BenchmarkTelemetry/LocalGet/on-2 	100	 8000 ns/op	 3232 B/op	 38 allocs/op
`))
	if err != nil {
		t.Fatal(err)
	}
	md := render(d, "1x", "")
	// ratios 1.5 and 1.6: median 1.55.
	for _, want := range []string{"## Telemetry on vs off", "| LocalGet | " + ms(5500) + " | " + ms(8500) + " | 1.55 | 20 · 38 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// History's section: the write with and without history paired within
// each repetition, the round trips, and the targets judged from them.
func TestHistoryReport(t *testing.T) {
	in := `bench-env: x
BenchmarkHistory/Write/off-2 	100	 1000000 ns/op	 1.000 mongo/op	 2.000 rt/op
BenchmarkHistory/Write/on-2 	100	 2000000 ns/op	 2.000 mongo/op	 3.000 rt/op
BenchmarkHistory/GetAt-2 	100	 800000 ns/op	 1.000 mongo/op	 1.000 rt/op
BenchmarkHistory/Bytes-2 	100	 20 ns/op	 495.0 B/version	 19.00 B/version-over-row	 472.1 MiB/million-writes
`
	d, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	out := render(d, "1x", "")
	for _, want := range []string{"## History", "| Write/on | " + ms(2000000) + " | 2 |", "takes 2.00 times as long", "A version takes 495 bytes (19 more than its row); a million writes, 472 MiB",
		"History: a write with history 1 MongoDB round trips more than without, ≤ 1: met", "History: a known-at read 1 round trips, = 1: met"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| History |") {
		t.Errorf("history's benchmarks leaked into the comparison table:\n%s", out)
	}
}
