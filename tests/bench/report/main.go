// Command report turns the output of repeated `go test -bench` runs of
// tests/bench (and gen's generator benchmarks) into one table: medians and
// ratios computed per repetition, round trips per operation, allocations,
// and the project's targets checked. It writes Markdown to -out and prints
// it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

type sample struct {
	rep                                  int
	ns, rt, mongo, redis, b, allocs, cpu float64
	ops                                  float64 // operations per second (throughput)
	nsMin, rtMin                         float64 // per simulated minute (the month)
	heapB, countedB                      float64 // series tier: bytes per candle
	bVersion, bOverRow, mibMillion       float64 // history: bytes per version
}

type result struct {
	workload, impl string
	samples        []sample
}

func main() {
	in := flag.String("in", "", "the benchmark output (several runs, appended)")
	out := flag.String("out", "BENCHMARKS.md", "the Markdown file to write")
	notes := flag.String("notes", "", "a Markdown file appended as is (profile notes)")
	benchtime := flag.String("benchtime", "", "the -benchtime used, for the header")
	serverNote := flag.String("server-note", "", "added to the servers line (e.g. the embedded FerretDB's module version)")
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	d, err := parse(f)
	if err != nil {
		fail(err)
	}
	var extra []byte
	if *notes != "" {
		if extra, err = os.ReadFile(*notes); err != nil {
			fail(err)
		}
	}
	if *serverNote != "" {
		d.env += " (" + *serverNote + ")"
	}
	md := render(d, *benchtime, string(extra))
	if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
		fail(err)
	}
	fmt.Print(md)
	if d.failed > 0 {
		fmt.Fprintf(os.Stderr, "report: %d targets missed (see the table)\n", d.failed)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}

type data struct {
	env, cpu string
	memory   string
	estimate string // the size table's rows, joined by " ;; "
	reps     int
	results  []*result // in first-seen order
	gen      []*result
	through  []*result // Throughput/N, in first-seen order
	tele     []*result // Telemetry/workload/off|on
	month    []*result // Month/workload/upstream|ours|tier
	tier     []*result // SeriesTierMemory, SeriesTierHit (internal/cache)
	hist     []*result // History/Write/off|on, History/GetAt, History/Bytes
	failed   int
}

func (d *data) get(list *[]*result, workload, impl string) *result {
	for _, r := range *list {
		if r.workload == workload && r.impl == impl {
			return r
		}
	}
	r := &result{workload: workload, impl: impl}
	*list = append(*list, r)
	return r
}

func parse(r io.Reader) (*data, error) {
	d := &data{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "bench-env: "):
			d.env = strings.TrimPrefix(line, "bench-env: ")
			d.reps++
			continue
		case strings.HasPrefix(line, "bench-estimate: "):
			d.estimate = strings.TrimPrefix(line, "bench-estimate: ")
			continue
		case strings.HasPrefix(line, "bench-memory: "):
			d.memory = strings.TrimPrefix(line, "bench-memory: ")
			continue
		case strings.HasPrefix(line, "cpu: "):
			d.cpu = strings.TrimPrefix(line, "cpu: ")
			continue
		case !strings.HasPrefix(line, "Benchmark"):
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 {
			continue
		}
		name := fields[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		name = strings.TrimPrefix(name, "Benchmark")
		s := sample{rep: d.reps}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			switch fields[i+1] {
			case "ns/op":
				s.ns = v
			case "rt/op":
				s.rt = v
			case "mongo/op":
				s.mongo = v
			case "redis/op":
				s.redis = v
			case "B/op":
				s.b = v
			case "allocs/op":
				s.allocs = v
			case "cpu-ns/op":
				s.cpu = v
			case "ops/s":
				s.ops = v
			case "ns/minute":
				s.nsMin = v
			case "rt/minute":
				s.rtMin = v
			case "heap-B/candle":
				s.heapB = v
			case "counted-B/candle":
				s.countedB = v
			case "B/version":
				s.bVersion = v
			case "B/version-over-row":
				s.bOverRow = v
			case "MiB/million-writes":
				s.mibMillion = v
			}
		}
		slash := strings.LastIndex(name, "/")
		if strings.HasPrefix(name, "Throughput/") {
			r := d.get(&d.through, strings.TrimPrefix(name, "Throughput/"), "")
			r.samples = append(r.samples, s)
			continue
		}
		if rest, ok := strings.CutPrefix(name, "Telemetry/"); ok && slash > 0 {
			w, impl, _ := strings.Cut(rest, "/")
			r := d.get(&d.tele, w, impl)
			r.samples = append(r.samples, s)
			continue
		}
		if rest, ok := strings.CutPrefix(name, "Month/"); ok && slash > 0 {
			w, impl, _ := strings.Cut(rest, "/")
			r := d.get(&d.month, w, impl)
			r.samples = append(r.samples, s)
			continue
		}
		if rest, ok := strings.CutPrefix(name, "History/"); ok {
			r := d.get(&d.hist, rest, "")
			r.samples = append(r.samples, s)
			continue
		}
		if strings.HasPrefix(name, "SeriesTier") {
			r := d.get(&d.tier, name, "")
			r.samples = append(r.samples, s)
			continue
		}
		if strings.HasPrefix(name, "Generate") {
			r := d.get(&d.gen, name, "")
			r.samples = append(r.samples, s)
			continue
		}
		if slash < 0 {
			continue
		}
		r := d.get(&d.results, name[:slash], name[slash+1:])
		r.samples = append(r.samples, s)
	}
	return d, sc.Err()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func col(r *result, f func(sample) float64) []float64 {
	if r == nil {
		return nil
	}
	out := make([]float64, len(r.samples))
	for i, s := range r.samples {
		out[i] = f(s)
	}
	return out
}

// ratios pairs the samples of a and b by repetition and returns a/b for each.
func ratios(a, b *result) []float64 {
	if a == nil || b == nil {
		return nil
	}
	var out []float64
	for _, x := range a.samples {
		for _, y := range b.samples {
			if x.rep == y.rep && y.ns > 0 {
				out = append(out, x.ns/y.ns)
				break
			}
		}
	}
	return out
}

func ms(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
	if ns < 10e3 {
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f µs", ns/1e3)
}

func ratioCell(rs []float64) string {
	if len(rs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", median(rs), slices.Min(rs), slices.Max(rs))
}

// why explains, per workload, where ours does more round trips than the
// floor, and what upstream's answer is worth.
func why(workload string) string {
	switch {
	case workload == "WarmRead":
		return "ours keeps the seed's read path: identity GET, then find by _id (and key); the floor asks MongoDB's unique index directly"
	case workload == "ColdRead":
		return "ours and upstream: identity GET (miss), find by key, SET to backfill"
	case workload == "Write":
		return "ours and upstream SET the identity after the upsert, so the next read is warm"
	case strings.HasPrefix(workload, "CandleWindow"):
		return "upstream: one identity GET and one find per candle, in sequence"
	case workload == "CandleWrite500":
		return "ours: one insert plus one pipelined SET of the 500 identities; upstream: an upsert and a SET per candle"
	case strings.HasPrefix(workload, "ListRead"):
		return "upstream's answer is wrong: sorted by a field that does not exist and cut at 200 (the log unsorted at 1000)"
	case workload == "ListWrite/log1000":
		return "ours: one insert plus one pipelined SET of the new identities"
	case strings.HasPrefix(workload, "ListWrite"):
		return "bulk upserts in chunks of the server's write chunk; upstream: an upsert and a SET per item (and it overwrites log entries)"
	case workload == "ReplayStep":
		return "window 60 + signal read and write + memory write and read + one log line; ours and upstream keep identities"
	}
	return ""
}

type target struct {
	text string
	ok   bool
	why  string // why a missed target is missed, when it is understood
}

func render(d *data, benchtime, notes string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\nGenerated by `make bench` on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %s, %d cores, %s/%s, %s\n", d.cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(&b, "- Servers: %s\n", d.env)
	fmt.Fprintf(&b, "- Repetitions: %d runs of the whole suite, each running floor, upstream and ours one after the other on the same data and the same connections, starting with a different one each run; `-benchtime %s`. Times are medians over the runs; a ratio is computed within each run, then its median and range (min–max) are shown.\n", d.reps, benchtime)
	b.WriteString("- floor: the fewest plain driver calls, no cache. upstream: the TypeScript adapter's access pattern re-implemented in Go. ours: the generated repositories.\n")
	b.WriteString("- Round trips (rt/op = MongoDB commands + Redis round trips, a pipeline counting once) do not depend on the machine or the server; times do, and are not MongoDB times unless the server above is MongoDB.\n\n")

	b.WriteString("| workload | rt/op floor · upstream · ours | median time floor · upstream · ours | ours / floor | upstream / ours | client CPU/op ours (floor) | allocs/op ours (floor) | why the round trips differ |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	var workloads []string
	for _, r := range d.results {
		if !slices.Contains(workloads, r.workload) {
			workloads = append(workloads, r.workload)
		}
	}
	var targets []target
	for _, w := range workloads {
		fl, up, ou := d.get(&d.results, w, "floor"), d.get(&d.results, w, "upstream"), d.get(&d.results, w, "ours")
		rt := func(r *result) float64 { return median(col(r, func(s sample) float64 { return s.rt })) }
		ns := func(r *result) float64 { return median(col(r, func(s sample) float64 { return s.ns })) }
		al := func(r *result) float64 { return median(col(r, func(s sample) float64 { return s.allocs })) }
		cpu := func(r *result) float64 { return median(col(r, func(s sample) float64 { return s.cpu })) }
		of, uo := ratios(ou, fl), ratios(up, ou)
		fmt.Fprintf(&b, "| %s | %g · %g · %g | %s · %s · %s | %s | %s | %s (%s) | %.0f (%.0f) | %s |\n", w, rt(fl), rt(up), rt(ou),
			ms(ns(fl)), ms(ns(up)), ms(ns(ou)), ratioCell(of), ratioCell(uo), ms(cpu(ou)), ms(cpu(fl)), al(ou), al(fl), why(w))
		if rt(fl) == rt(ou) && len(of) > 0 {
			targets = append(targets, target{fmt.Sprintf("%s: ours/floor %.2f ≤ 1.10 (same round trips)", w, median(of)), median(of) <= 1.10, ""})
		}
		switch w {
		case "CandleWindow/500":
			targets = append(targets, target{fmt.Sprintf("%s: upstream/ours %.1f ≥ 50", w, median(uo)), median(uo) >= 50, ""})
		case "CandleWrite500":
			targets = append(targets, target{fmt.Sprintf("%s: upstream/ours %.1f ≥ 20", w, median(uo)), median(uo) >= 20, ""})
			targets = append(targets, target{fmt.Sprintf("%s: ours %g round trips ≤ 2", w, rt(ou)), rt(ou) <= 2, ""})
		case "Write":
			targets = append(targets, target{fmt.Sprintf("%s: ours %g round trips = 2", w, rt(ou)), rt(ou) == 2, ""})
		}
		if strings.HasPrefix(w, "CandleWindow") {
			targets = append(targets, target{fmt.Sprintf("%s: ours %g round trip = 1", w, rt(ou)), rt(ou) == 1, ""})
		}
		if strings.HasPrefix(w, "ListWrite") {
			targets = append(targets, target{fmt.Sprintf("%s: ours %g round trips ≤ 2 (one bulk write, one pipeline)", w, rt(ou)), rt(ou) <= 2, ""})
		}
		if strings.HasPrefix(w, "ListRead") {
			targets = append(targets, target{fmt.Sprintf("%s: ours %g round trip = 1", w, rt(ou)), rt(ou) == 1, ""})
		}
	}
	// Cache modes: "cached" is ours with signals and memory entries in
	// value mode, "local" in local mode (on a Conn of its own), candles in
	// mode none for both.
	var modeRows []string
	for _, w := range workloads {
		ca := d.get(&d.results, w, "cached")
		if ca == nil || len(ca.samples) == 0 {
			continue
		}
		fl, ou, lo := d.get(&d.results, w, "floor"), d.get(&d.results, w, "ours"), d.get(&d.results, w, "local")
		hasLocal := len(lo.samples) > 0
		rt := func(r *result) float64 { return median(col(r, func(s sample) float64 { return s.rt })) }
		rd := func(r *result) float64 { return median(col(r, func(s sample) float64 { return s.redis })) }
		ns := func(r *result) float64 { return median(col(r, func(s sample) float64 { return s.ns })) }
		num := func(r *result, f func(*result) float64) string {
			if len(r.samples) == 0 {
				return "-"
			}
			return fmt.Sprintf("%g", f(r))
		}
		dur := func(r *result) string {
			if len(r.samples) == 0 {
				return "-"
			}
			return ms(ns(r))
		}
		fc, oc, flo := ratios(fl, ca), ratios(ou, ca), ratios(fl, lo)
		modeRows = append(modeRows, fmt.Sprintf("| %s | %g · %g · %g · %s | %g · %g · %s | %s · %s · %s · %s | %s | %s | %s |", w, rt(fl), rt(ou), rt(ca), num(lo, rt), rd(ou), rd(ca), num(lo, rd),
			ms(ns(fl)), ms(ns(ou)), ms(ns(ca)), dur(lo), ratioCell(fc), ratioCell(oc), ratioCell(flo)))
		switch {
		case w == "WarmRead":
			targets = append(targets, target{fmt.Sprintf("%s: value mode floor/cached %.1f ≥ 3 (one Redis round trip)", w, median(fc)), median(fc) >= 3, ""})
			targets = append(targets, target{fmt.Sprintf("%s: value mode %g round trip = 1, %g on MongoDB", w, rt(ca), rt(ca)-rd(ca)), rt(ca) == 1 && rd(ca) == 1, ""})
			if hasLocal {
				targets = append(targets, target{fmt.Sprintf("%s: local mode floor/local %.0f ≥ 100 (no round trip)", w, median(flo)), median(flo) >= 100, ""})
				targets = append(targets, target{fmt.Sprintf("%s: local mode %g round trips = 0", w, rt(lo)), rt(lo) == 0, ""})
			}
		case w == "Write":
			targets = append(targets, target{fmt.Sprintf("%s: value mode %g round trips ≤ identity's %g + 1", w, rt(ca), rt(ou)), rt(ca) <= rt(ou)+1, ""})
			if hasLocal {
				targets = append(targets, target{fmt.Sprintf("%s: local mode %g round trips ≤ identity's %g + 1", w, rt(lo), rt(ou)), rt(lo) <= rt(ou)+1, ""})
			}
		case w == "ReplayStep" && hasLocal:
			targets = append(targets, target{fmt.Sprintf("%s: identity %g round trips / local %g = %.1f ≥ 3", w, rt(ou), rt(lo), rt(ou)/rt(lo)), rt(ou) >= 3*rt(lo), ""})
		case strings.HasPrefix(w, "CandleWindow") || w == "CandleWrite500":
			targets = append(targets, target{fmt.Sprintf("%s: mode none %g Redis round trips = 0, %g round trips in all (identity: %g)", w, rd(ca), rt(ca), rt(ou)), rd(ca) == 0, ""})
		}
	}
	if len(modeRows) > 0 {
		b.WriteString("\n## Cache modes\n\n")
		b.WriteString("cached: the generated runtime with signals and memory entries in `value` mode (Redis holds the row); local: the same in `local` mode (and each process a copy for 100 ms), on a Conn of its own; both with candles in mode `none` (no Redis) and lists in `identity` mode. Ratios are times, within each run; a local-mode cold read is a value-mode one (its copy cannot be dropped from outside), so it is not run.\n\n")
		b.WriteString("| workload | rt/op floor · ours · cached · local | Redis rt/op ours · cached · local | median time floor · ours · cached · local | floor / cached | ours / cached | floor / local |\n|---|---|---|---|---|---|---|\n")
		b.WriteString(strings.Join(modeRows, "\n") + "\n")
		if d.memory != "" {
			b.WriteString("\nMemory per cached row (`MEMORY USAGE`, one signal row): " + d.memory + "\n")
		}
	}
	if d.estimate != "" {
		b.WriteString("\n## Size per million rows (a paper estimate)\n\n")
		b.WriteString("From measured bytes: Redis `MEMORY USAGE` of one cached row per mode (bytes a row are MB a million rows), MongoDB `collStats` of the benchmark's collections (average document, index bytes a row). Not measured at a million rows: Redis adds its hash table's growth, MongoDB its padding and the indexes' depth. The `local` mode adds the value mode's bytes plus one field per process holding a copy, and in each such process the document and about 150 B.\n\n")
		b.WriteString("| domain | Redis, identity | Redis, value | Redis, none | MongoDB |\n|---|---|---|---|---|\n")
		b.WriteString(strings.ReplaceAll(d.estimate, " ;; ", "\n") + "\n")
	}
	if len(d.through) > 0 {
		b.WriteString("\n## Throughput\n\n")
		b.WriteString("Clients, each its own Conn (a process's view), each doing reads and writes (half each, identity mode, memory entries of its own keys) as fast as it can, all at once; operations per second of them all, medians over the runs. The servers share the machine's two cores with the clients, so growth here is bounded by the machine, not the design.\n\n")
		b.WriteString("| clients | operations/s | per client | against 1 client |\n|---|---|---|---|\n")
		base := median(col(d.through[0], func(s sample) float64 { return s.ops }))
		for _, r := range d.through {
			n, _ := strconv.Atoi(r.workload)
			ops := median(col(r, func(s sample) float64 { return s.ops }))
			per, grow := 0.0, 0.0
			if n > 0 {
				per = ops / float64(n)
			}
			if base > 0 {
				grow = ops / base
			}
			fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.2fx |\n", r.workload, ops, per, grow)
		}
	}
	if len(d.month) > 0 {
		targets = append(targets, renderMonth(&b, d)...)
	}
	if len(d.hist) > 0 {
		targets = append(targets, renderHistory(&b, d)...)
	}
	b.WriteString("\n## Targets\n\n")
	for _, t := range targets {
		mark := "met"
		if !t.ok {
			mark = "**missed**"
			if t.why != "" {
				mark += " (" + t.why + ")"
			}
			d.failed++
		}
		fmt.Fprintf(&b, "- %s: %s\n", t.text, mark)
	}
	if len(d.tele) > 0 {
		b.WriteString("\n## Telemetry on vs off\n\n`go test -bench Telemetry ./telemetry`, in the same run: off is a Conn without an Observer (one nil check per operation); on has the OpenTelemetry Observer (a span per operation and per MongoDB command, a latency histogram), go-redis's tracing and the counters registered, with the SDK's tracer (every span sampled, a no-op exporter) and a manual metric reader. LocalGet is a local-mode warm read (no round trip: the overhead shows most); Put an identity-mode write (two round trips).\n\n| workload | time off | time on | on / off | allocs off · on |\n|---|---|---|---|---|\n")
		for _, off := range d.tele {
			if off.impl != "off" {
				continue
			}
			on := d.get(&d.tele, off.workload, "on")
			ns := func(r *result) float64 { return median(col(r, func(s sample) float64 { return s.ns })) }
			al := func(r *result) float64 { return median(col(r, func(s sample) float64 { return s.allocs })) }
			fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %.0f · %.0f |\n", off.workload, ms(ns(off)), ms(ns(on)), median(ratios(on, off)), al(off), al(on))
		}
	}
	if len(d.gen) > 0 {
		b.WriteString("\n## Generator\n\n| manifest | time per run | memory per run | allocs per run |\n|---|---|---|---|\n")
		for _, r := range d.gen {
			fmt.Fprintf(&b, "| %s | %s | %.1f MB | %.0f |\n", strings.TrimPrefix(r.workload, "Generate/"),
				ms(median(col(r, func(s sample) float64 { return s.ns }))), median(col(r, func(s sample) float64 { return s.b }))/1e6,
				median(col(r, func(s sample) float64 { return s.allocs })))
		}
	}
	if notes != "" {
		b.WriteString("\n")
		b.WriteString(notes)
	}
	return b.String()
}

// The month's shape (tests/bench/month_test.go): its minutes and positions.
const (
	monthMinutes = 44_640
	monthSignals = 10
	monthDays    = 31
)

// perRep returns f of the samples of rs that share a repetition, one value
// per repetition where every result has a sample.
func perRep(f func(ss []sample) float64, rs ...*result) []float64 {
	var out []float64
	if len(rs) == 0 || rs[0] == nil {
		return nil
	}
	for _, x := range rs[0].samples {
		ss := []sample{x}
		for _, r := range rs[1:] {
			for _, y := range r.samples {
				if y.rep == x.rep {
					ss = append(ss, y)
					break
				}
			}
		}
		if len(ss) == len(rs) {
			out = append(out, f(ss))
		}
	}
	return out
}

// renderMonth writes backtest-kit's month: upstream's pattern and ours
// without the tier projected from a minute and a position, the tier's
// month run whole; and returns the month's targets.
func renderMonth(b *strings.Builder, d *data) []target {
	get := func(w, impl string) *result { return d.get(&d.month, w, impl) }
	med := func(r *result, f func(sample) float64) float64 { return median(col(r, f)) }
	rt := func(s sample) float64 { return s.rt }
	ns := func(s sample) float64 { return s.ns }
	// The projected month of an implementation, in ns and round trips.
	month := func(impl string) (nsM, rtM []float64) {
		mi, po := get("Minute", impl), get("Position", impl)
		nsM = perRep(func(ss []sample) float64 { return monthMinutes*ss[0].ns + monthSignals*ss[1].ns }, mi, po)
		rtM = perRep(func(ss []sample) float64 { return monthMinutes*ss[0].rt + monthSignals*ss[1].rt }, mi, po)
		return nsM, rtM
	}
	upNs, upRt := month("upstream")
	ouNs, ouRt := month("ours")
	ti := get("Backtest", "tier")
	tiNs := col(ti, ns)
	tiRt := col(ti, rt)
	ratio := func(a []float64, bs []float64) []float64 {
		var out []float64
		for i := range min(len(a), len(bs)) {
			if bs[i] > 0 {
				out = append(out, a[i]/bs[i])
			}
		}
		return out
	}
	cell := func(xs []float64, f func(float64) string) string {
		if len(xs) == 0 {
			return "-"
		}
		return f(median(xs))
	}
	perMin := func(x float64) float64 { return x / monthMinutes }
	rtCell := func(xs []float64) string {
		return cell(xs, func(v float64) string { return fmt.Sprintf("%.4g", perMin(v)) })
	}
	nsCell := func(xs []float64) string { return cell(xs, func(v float64) string { return ms(perMin(v)) }) }
	wall := func(xs []float64) string { return cell(xs, ms) }
	b.WriteString("\n## backtest-kit's month\n\n")
	b.WriteString("One symbol's month as backtest-kit v18 reads it: each simulated minute asks three times for the five one-minute candles before it; ten positions each read two 4h candles, the 1,445 candles after their minute (1,000 + 445) and the five before each held minute. upstream: its adapter's pattern (an identity GET and a find per candle); ours: the generated repositories with the series tier off (one find per window); tier: the same with the series tier on, each month on a fresh Conn. upstream's and ours' months are projected from a measured minute and position (44,640 minutes, 10 positions); the tier's month is run whole. Round trips do not depend on the machine.\n\n")
	b.WriteString("| | upstream | ours (no tier) | tier |\n|---|---|---|---|\n")
	fmt.Fprintf(b, "| round trips per idle minute | %g | %g | - |\n", med(get("Minute", "upstream"), rt), med(get("Minute", "ours"), rt))
	fmt.Fprintf(b, "| round trips per position | %g | %g | - |\n", med(get("Position", "upstream"), rt), med(get("Position", "ours"), rt))
	fmt.Fprintf(b, "| round trips per minute, the month amortised | %s | %s | %s |\n", rtCell(upRt), rtCell(ouRt), rtCell(tiRt))
	fmt.Fprintf(b, "| time per minute, the month amortised | %s | %s | %s |\n", nsCell(upNs), nsCell(ouNs), nsCell(tiNs))
	fmt.Fprintf(b, "| the month's wall time | %s (projected) | %s (projected) | %s |\n", wall(upNs), wall(ouNs), wall(tiNs))
	fmt.Fprintf(b, "| month: upstream / this | 1 | %s | %s |\n", ratioCell(ratio(upNs, ouNs)), ratioCell(ratio(upNs, tiNs)))
	fmt.Fprintf(b, "| month: ours / this | - | 1 | %s |\n", ratioCell(ratio(ouNs, tiNs)))
	for _, w := range []struct{ name, label string }{{"LiveIdle", "live idle minute"}, {"LiveActive", "live active minute"}} {
		up, ou := get(w.name, "upstream"), get(w.name, "ours")
		fmt.Fprintf(b, "| %s: round trips · time | %g · %s | - | %g · %s |\n", w.label, med(up, rt), ms(med(up, ns)), med(ou, rt), ms(med(ou, ns)))
	}
	wu, wo := get("WarmUp", "upstream"), get("WarmUp", "ours")
	fmt.Fprintf(b, "| warm-up, a day of 1,440 candles: round trips · time | %g · %s | %g · %s | (as ours) |\n", med(wu, rt), ms(med(wu, ns)), med(wo, rt), ms(med(wo, ns)))
	fmt.Fprintf(b, "| warm-up of the month (31 days, projected) | %s | %s | (as ours) |\n", ms(monthDays*med(wu, ns)), ms(monthDays*med(wo, ns)))
	if len(d.tier) > 0 {
		mem, hit := get2(d, "SeriesTierMemory"), get2(d, "SeriesTierHit")
		fmt.Fprintf(b, "\nThe tier's memory (`go test -bench SeriesTier ./internal/cache`): a million one-minute candles (six float64 fields) take %.0f MB on the heap, %.0f MB as the tier counts them against its bound (Config.SeriesCacheBytes, 64 MiB by default: about %.1f million candles); a window of five candles held in memory takes %s.\n",
			median(col(mem, func(s sample) float64 { return s.heapB })), median(col(mem, func(s sample) float64 { return s.countedB })),
			64*(1<<20)/1e6/max(1, median(col(mem, func(s sample) float64 { return s.countedB }))), ms(median(col(hit, func(s sample) float64 { return s.ns }))))
	}
	b.WriteString("\nLive: the candle that closed last is not stored yet, so the first of the three reads misses it; the engine writes the five candles and reads them twice more. An active minute adds a recent-signal upsert and a storage list write of 50 rows. ours runs live with the tier on: what it inserted is in its tier.\n")
	var ts []target
	if len(tiRt) > 0 {
		v := perMin(median(tiRt))
		ts = append(ts, target{text: fmt.Sprintf("Month: a backtest minute with the tier %.4f round trips, amortised over the month, ≤ 0.01", v), ok: v <= 0.01})
	}
	if r := ratio(upNs, tiNs); len(r) > 0 {
		ts = append(ts, target{text: fmt.Sprintf("Month: the backtest month upstream / tier %.0f ≥ 300", median(r)), ok: median(r) >= 300})
	}
	if r := get("Minute", "ours"); len(r.samples) > 0 {
		v := med(r, rt)
		ts = append(ts, target{text: fmt.Sprintf("Month: an idle backtest minute without the tier %g round trips ≤ 3", v), ok: v <= 3})
	}
	if r := get("LiveIdle", "ours"); len(r.samples) > 0 {
		v := med(r, rt)
		ts = append(ts, target{text: fmt.Sprintf("Month: a live idle minute %g round trips ≤ 2 (upstream: %g)", v, med(get("LiveIdle", "upstream"), rt)), ok: v <= 2,
			why: "the read that misses the candle just closed (1), the insert (1) and the SET of its identity key, which backtest-kit reads (1)"})
	}
	return ts
}

func get2(d *data, name string) *result { return d.get(&d.tier, name, "") }

// renderHistory writes history's costs (tests/bench/history_test.go): the
// shipped signal domain written with history and without, on one Conn in
// one run; a known-at read; the bytes a version takes.
func renderHistory(b *strings.Builder, d *data) []target {
	get := func(w string) *result { return d.get(&d.hist, w, "") }
	med := func(r *result, f func(sample) float64) float64 { return median(col(r, f)) }
	ns := func(s sample) float64 { return s.ns }
	mongo := func(s sample) float64 { return s.mongo }
	off, on, at, bytes := get("Write/off"), get("Write/on"), get("GetAt"), get("Bytes")
	b.WriteString("\n## History\n\n`BenchmarkHistory`: the shipped signal domain's write without history and with it (collections of their own, one Conn, one run), a known-at read (`GetAt`), and the stored size of a version (see docs/history.md).\n\n| workload | time | MongoDB round trips |\n|---|---|---|\n")
	for _, r := range []*result{off, on, at} {
		if len(r.samples) > 0 {
			fmt.Fprintf(b, "| %s | %s | %g |\n", r.workload, ms(med(r, ns)), med(r, mongo))
		}
	}
	var ts []target
	if len(off.samples) > 0 && len(on.samples) > 0 {
		fmt.Fprintf(b, "\nWith history, a write takes %.2f times as long (its two round trips are sequential: the version is made from the row the first returns).\n", median(ratios(on, off)))
		extra := med(on, mongo) - med(off, mongo)
		ts = append(ts, target{text: fmt.Sprintf("History: a write with history %g MongoDB round trips more than without, ≤ 1", extra), ok: extra <= 1})
	}
	if len(at.samples) > 0 {
		v := med(at, mongo)
		ts = append(ts, target{text: fmt.Sprintf("History: a known-at read %g round trips, = 1", v), ok: v == 1})
	}
	if len(bytes.samples) > 0 {
		fmt.Fprintf(b, "\nA version takes %.0f bytes (%.0f more than its row); a million writes, %.0f MiB before the indexes (the unique one on the key and version, and the TTL one where `keep` is set) and the server's compression.\n",
			med(bytes, func(s sample) float64 { return s.bVersion }), med(bytes, func(s sample) float64 { return s.bOverRow }), med(bytes, func(s sample) float64 { return s.mibMillion }))
	}
	return ts
}
