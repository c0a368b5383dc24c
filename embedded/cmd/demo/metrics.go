package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/persistgen/persistgen/runtime"
	"github.com/persistgen/persistgen/telemetry"
)

// metrics serves the Conn's OpenTelemetry metrics for Prometheus at
// http://ADDR/metrics (-metrics ADDR): the counters of Conn.Stats and the
// operations' latency histogram, through OpenTelemetry's Prometheus
// exporter on a registry of its own.
type metrics struct {
	mp       *sdkmetric.MeterProvider
	observer runtime.Observer
	srv      *http.Server
	url      string
	reg      interface{ Unregister() error }
}

// startMetrics listens on addr; its observer goes into the Conn's Config.
func startMetrics(addr string, out io.Writer) (*metrics, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	m := &metrics{mp: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))}
	if m.observer, err = telemetry.NewObserver(tracenoop.NewTracerProvider(), m.mp); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = m.mp.Shutdown(context.Background())
		return nil, fmt.Errorf("-metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	m.url = "http://" + ln.Addr().String() + "/metrics"
	go func() { _ = m.srv.Serve(ln) }()
	fmt.Fprintf(out, "metrics: %s (Prometheus)\n", m.url)
	return m, nil
}

// register exports conn's counters.
func (m *metrics) register(conn *runtime.Conn) error {
	reg, err := telemetry.Register(conn, m.mp)
	m.reg = reg
	return err
}

// hold keeps serving after the replay until ctx ends (an interrupt), so
// that the last values can be scraped, then stops.
func (m *metrics) hold(ctx context.Context, out io.Writer) {
	fmt.Fprintf(out, "metrics: still served at %s; interrupt to stop\n", m.url)
	<-ctx.Done()
}

func (m *metrics) stop() {
	if m.reg != nil {
		_ = m.reg.Unregister()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := m.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = m.srv.Close()
	}
	_ = m.mp.Shutdown(ctx)
}
