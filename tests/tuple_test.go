package tests

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

func riskFixture() (repo.RiskKey, []repo.RiskEntry) {
	return repo.RiskKey{RiskName: "max3", ExchangeName: "binance"}, []repo.RiskEntry{
		{Key: "macd_binance_BTCUSDT", Position: repo.RiskPosition{StrategyName: "macd", ExchangeName: "binance", Symbol: "BTCUSDT", Position: "long", PriceOpen: 100}},
		{Key: "macd_binance_ETHUSDT", Position: repo.RiskPosition{StrategyName: "macd", ExchangeName: "binance", Symbol: "ETHUSDT", Position: "short", PriceOpen: 5}},
	}
}

// Upstream's shape: positions is a list of [key, position] pairs. Where the
// server rejects nested arrays (FerretDB v1) the auto form writes {key,
// position} documents; either way the Go value reads back the same.
func TestRiskPairsStoredInTheFormTheServerAccepts(t *testing.T) {
	env, r := openRepos(t)
	ctx := ctxT(t)
	k, v := riskFixture()
	must(t, r.Risk.Put(ctx, k, v, ms(1)))
	got, ok, err := r.Risk.Get(ctx, k)
	must(t, err)
	if !ok || !cmp.Equal(v, got) {
		t.Fatalf("read back: %s", cmp.Diff(v, got))
	}
	raw, err := env.Conn.Database().Collection("risk-items").FindOne(ctx, bson.D{}).Raw()
	must(t, err)
	first := raw.Lookup("positions", "0")
	wantType := bson.TypeArray
	if !env.Conn.Capabilities().NestedArrays {
		wantType = bson.TypeEmbeddedDocument
	}
	if first.Type != wantType {
		t.Fatalf("positions[0] stored as %v on %s (%+v), want %v", first.Type, env.Conn.Server().Product, env.Conn.Capabilities(), wantType)
	}
}

// Documents written by the other form (another engine, or a database moved
// from FerretDB v1 to MongoDB) read back the same.
func TestRiskReadsBothTupleForms(t *testing.T) {
	env, r := openRepos(t)
	ctx := ctxT(t)
	k, v := riskFixture()
	pos := func(e repo.RiskEntry) bson.D {
		b, err := bson.Marshal(e.Position)
		must(t, err)
		var d bson.D
		must(t, bson.Unmarshal(b, &d))
		return d
	}
	docs := bson.A{}
	arrays := bson.A{}
	for _, e := range v {
		docs = append(docs, bson.D{{Key: "key", Value: e.Key}, {Key: "position", Value: pos(e)}})
		arrays = append(arrays, bson.A{e.Key, pos(e)})
	}
	for _, form := range []struct {
		name      string
		positions bson.A
		needs     runtime.Capabilities
	}{
		{"documents", docs, runtime.Capabilities{}},
		{"arrays", arrays, runtime.Capabilities{NestedArrays: true}},
	} {
		t.Run(form.name, func(t *testing.T) {
			testenv.Need(t, env.Conn, form.needs)
			k := k
			k.RiskName = "r-" + form.name
			_, err := env.Conn.Database().Collection("risk-items").InsertOne(ctx, bson.D{{Key: "riskName", Value: k.RiskName}, {Key: "exchangeName", Value: k.ExchangeName},
				{Key: "positions", Value: form.positions}, {Key: "when", Value: 1.0}})
			must(t, err)
			got, ok, err := r.Risk.Get(ctx, k)
			must(t, err)
			if !ok || !cmp.Equal(v, got) {
				t.Fatalf("%s: %s", form.name, cmp.Diff(v, got))
			}
		})
	}
}

// TupleForm forces a form; upstream's arrays on a server without nested
// arrays are refused by the server with an error, and nothing is stored.
func TestTupleFormCanBeForced(t *testing.T) {
	t.Parallel()
	for _, form := range []runtime.TupleForm{runtime.TupleArray, runtime.TupleDocument} {
		env := testenv.New(t, func(c *runtime.Config) { c.TupleForm = form })
		ctx := ctxT(t)
		must(t, env.Conn.Ready(ctx))
		r, err := repo.NewRiskRepo(env.Conn)
		must(t, err)
		k, v := riskFixture()
		err = r.Put(ctx, k, v, ms(1))
		if form == runtime.TupleArray && !env.Conn.Capabilities().NestedArrays {
			if err == nil {
				t.Fatal("a server probed as without nested arrays accepted them")
			}
			if n, _ := env.Conn.Database().Collection("risk-items").CountDocuments(ctx, bson.D{}); n != 0 {
				t.Fatalf("a refused write stored %d documents", n)
			}
			continue
		}
		must(t, err)
		raw, err := env.Conn.Database().Collection("risk-items").FindOne(ctx, bson.D{}).Raw()
		must(t, err)
		want := map[runtime.TupleForm]bson.Type{runtime.TupleArray: bson.TypeArray, runtime.TupleDocument: bson.TypeEmbeddedDocument}[form]
		if got := raw.Lookup("positions", "0").Type; got != want {
			t.Fatalf("form %q stored %v", form, got)
		}
	}
	if _, err := runtime.Open(runtime.Config{TupleForm: "bogus"}); err == nil {
		t.Fatal("an unknown TupleForm was accepted")
	}
}
