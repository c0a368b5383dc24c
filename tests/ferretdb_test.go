package tests

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

// backtest-kit writes minuteEstimatedTime = +Infinity for signals without a
// time limit. MongoDB and FerretDB v2 store it; where the server cannot
// (Capabilities.Infinity false: FerretDB v1) the write must fail with an
// error that says so, storing nothing.
func TestInfiniteEstimatedTime(t *testing.T) {
	env, r := openRepos(t)
	ctx := ctxT(t)
	k := repo.SignalKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}
	row := &repo.SignalRow{ID: "forever", MinuteEstimatedTime: math.Inf(1)}
	err := r.Signal.Put(ctx, k, row)
	if !env.Conn.Capabilities().Infinity {
		var oe *runtime.OpError
		if err == nil || !errors.As(err, &oe) || oe.Domain != "signal" || !strings.Contains(strings.ToLower(err.Error()), "inf") {
			t.Fatalf("+Inf write on a server without ±Infinity: %v; want an error naming the infinite value", err)
		}
		_, ok, err := r.Signal.Get(ctx, k)
		must(t, err)
		if ok {
			t.Fatal("a refused write stored a row")
		}
		return
	}
	must(t, err)
	got, ok, err := r.Signal.Get(ctx, k)
	must(t, err)
	if !ok || !math.IsInf(got.MinuteEstimatedTime, 1) {
		t.Fatalf("read back %+v", got)
	}
}
