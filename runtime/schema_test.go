package runtime

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func testSchema() *Schema {
	return &Schema{
		Domain: "recent", Collection: "recent-items",
		Key: []KeyField{{Name: "symbol"}, {Name: "strategyName"}, {Name: "exchangeName"},
			{Name: "frameName", Optional: true}, {Name: "backtest", TrueWord: "backtest", FalseWord: "live"}},
		RedisPrefix: "recent_cache",
		RedisOrder:  []string{"backtest", "exchangeName", "strategyName", "frameName", "symbol"},
		HasWhen:     true, Payload: "payload",
	}
}

func mustCompile(t *testing.T, s *Schema) *compiled {
	t.Helper()
	c, err := compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRedisKeyFollowsRedisOrderAndWords(t *testing.T) {
	c := mustCompile(t, testSchema())
	vals, err := c.Values([]any{"BTCUSDT", "macd", "binance", "", true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.RedisKey("ns:", vals), "ns:recent_cache:backtest:binance:macd::BTCUSDT"; got != want {
		t.Fatalf("redisKey = %q, want %q", got, want)
	}
	vals[4] = false
	if got, want := c.RedisKey("", vals), "recent_cache:live:binance:macd::BTCUSDT"; got != want {
		t.Fatalf("redisKey = %q, want %q", got, want)
	}
}

func TestRedisKeyNumbersPrintAsJavaScriptDoes(t *testing.T) {
	c := mustCompile(t, &Schema{Domain: "candle", Collection: "c", RedisPrefix: "candle_cache",
		Key: []KeyField{{Name: "interval"}, {Name: "timestamp"}}})
	for _, tc := range []struct {
		v    any
		want string
	}{
		{float64(1700000040000), "candle_cache:1m:1700000040000"},
		{int64(1700000040000), "candle_cache:1m:1700000040000"},
		{int(5), "candle_cache:1m:5"},
		{1.5, "candle_cache:1m:1.5"},
		{float64(-0.25), "candle_cache:1m:-0.25"},
	} {
		vals, err := c.Values([]any{"1m", tc.v})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.RedisKey("", vals); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.v, got, tc.want)
		}
	}
}

// Every pair of distinct keys built from parts that contain the separator and
// the escape character gets distinct Redis keys (exhaustive over a small
// alphabet of troublesome parts).
func TestRedisKeyEscapingIsInjective(t *testing.T) {
	c := mustCompile(t, &Schema{Domain: "d", Collection: "c", RedisPrefix: "p",
		Key: []KeyField{{Name: "a", Optional: true}, {Name: "b", Optional: true}, {Name: "c", Optional: true}}})
	parts := []string{"", "a", ":", "::", "%", "%3A", "%25", "a:b", "3A", "a%", ":a", "%:"}
	seen := map[string][]string{}
	for _, x := range parts {
		for _, y := range parts {
			for _, z := range parts {
				vals, err := c.Values([]any{x, y, z})
				if err != nil {
					t.Fatal(err)
				}
				k := c.RedisKey("", vals)
				if prev, ok := seen[k]; ok {
					t.Fatalf("%q and %q share the Redis key %q", prev, []string{x, y, z}, k)
				}
				seen[k] = []string{x, y, z}
			}
		}
	}
	if len(seen) != len(parts)*len(parts)*len(parts) {
		t.Fatalf("%d keys", len(seen))
	}
}

func TestKeyValuesRejectsBadParts(t *testing.T) {
	c := mustCompile(t, testSchema())
	for _, tc := range []struct {
		name string
		vals []any
		want string
	}{
		{"too few", []any{"a", "b"}, "2 key parts given, recent has 5"},
		{"empty required", []any{"a", "", "c", "", true}, `key field "strategyName" is empty`},
		{"nil", []any{"a", "b", nil, "", true}, `key field "exchangeName": missing`},
		{"unsupported", []any{"a", "b", "c", []string{"x"}, true}, `key field "frameName": unsupported type []string`},
		{"NaN", []any{"a", "b", "c", "", math.NaN()}, "not a storable number"},
		{"bad UTF-8", []any{"\xff", "b", "c", "", true}, "not valid UTF-8"},
	} {
		_, err := c.Values(tc.vals)
		if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrInvalidKey containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := c.Values([]any{"a", "b", "c", "", false}); err != nil {
		t.Errorf("optional empty part rejected: %v", err)
	}
}

func TestSchemaValidateNamesTheProblem(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Schema)
		want string
	}{
		{"no domain", func(s *Schema) { s.Domain = "" }, "no Domain"},
		{"no collection", func(s *Schema) { s.Collection = "" }, "no Collection"},
		{"prefix with colon", func(s *Schema) { s.RedisPrefix = "a:b" }, "RedisPrefix"},
		{"no key", func(s *Schema) { s.Key, s.RedisOrder = nil, nil }, "no Key fields"},
		{"dotted key", func(s *Schema) { s.Key[0].Name = "a.b" }, `"a.b" is not a plain BSON field name`},
		{"reserved key", func(s *Schema) { s.Key[0].Name = "when" }, "reserved"},
		{"duplicate key", func(s *Schema) { s.Key[1].Name = "symbol" }, "listed twice"},
		{"payload collides", func(s *Schema) { s.Payload = "symbol" }, "collides"},
		{"short redis order", func(s *Schema) { s.RedisOrder = s.RedisOrder[:2] }, "RedisOrder has 2 fields"},
		{"unknown in redis order", func(s *Schema) { s.RedisOrder[0] = "nope" }, `"nope" is not a key field`},
		{"nameless index", func(s *Schema) { s.Indexes = []Index{{Keys: []IndexKey{{Field: "x"}}}} }, "needs a Name"},
	} {
		s := testSchema()
		tc.mod(s)
		err := s.Validate()
		if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrSchema containing %q", tc.name, err, tc.want)
		}
	}
	if err := testSchema().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAllIndexes(t *testing.T) {
	s := &Schema{Domain: "measure", Collection: "measure-items", RedisPrefix: "measure_cache",
		Key: []KeyField{{Name: "bucket"}, {Name: "entryKey"}}, HasRemoved: true, Payload: "payload",
		Indexes: []Index{{Name: "bucket_1_removed_1", Keys: []IndexKey{{Field: "bucket"}, {Field: "removed"}}}}}
	var names []string
	for _, ix := range s.AllIndexes() {
		names = append(names, ix.Name)
	}
	want := []string{"bucket_1_entryKey_1", "bucket_1", "entryKey_1", "removed_1", "bucket_1_removed_1"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("indexes (-want +got):\n%s", diff)
	}
	// A one-field key gets no second index on the same field.
	log := &Schema{Domain: "log", Collection: "log-items", RedisPrefix: "log_cache", Key: []KeyField{{Name: "entryId"}}}
	if ix := log.AllIndexes(); len(ix) != 1 || ix[0].Name != "entryId_1" || !ix[0].Unique {
		t.Fatalf("log indexes = %+v", ix)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	env := map[string]string{
		"CC_MONGO_CONNECTION_STRING": "mongodb://db:27017/x",
		"CC_REDIS_HOST":              "cache",
		"CC_REDIS_PORT":              "6380",
		"CC_REDIS_USER":              "u",
		"CC_REDIS_PASSWORD":          "p",
	}
	c := configFrom(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	want := Config{MongoURI: "mongodb://db:27017/x", RedisAddr: "cache:6380", RedisUsername: "u", RedisPassword: "p"}
	if diff := cmp.Diff(want, c, cmp.Comparer(func(a, b Config) bool {
		return a.MongoURI == b.MongoURI && a.RedisAddr == b.RedisAddr && a.RedisUsername == b.RedisUsername && a.RedisPassword == b.RedisPassword
	})); diff != "" {
		t.Fatalf("config (-want +got):\n%s", diff)
	}
	d := configFrom(func(string) (string, bool) { return "", false }).withDefaults()
	if d.MongoURI != DefaultMongoURI || d.RedisAddr != "127.0.0.1:6379" || d.ReadyTimeout.Seconds() != 15 {
		t.Fatalf("defaults = %+v", d)
	}
}

func TestOpenUsesTheDatabaseOfTheConnectionString(t *testing.T) {
	for _, tc := range []struct{ uri, db, want string }{
		{DefaultMongoURI, "", "backtest-kit"},
		{"mongodb://h:1/", "", DefaultDatabase},
		{"mongodb://h:1/other", "", "other"},
		{"mongodb://h:1/other", "mine", "mine"},
	} {
		c, err := Open(Config{MongoURI: tc.uri, Database: tc.db, DisableRedis: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Database().Name(); got != tc.want {
			t.Errorf("%s (Database %q): %q, want %q", tc.uri, tc.db, got, tc.want)
		}
		_ = c.Close(t.Context())
	}
	_, err := Open(Config{MongoURI: "http://nope"})
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "CC_MONGO_CONNECTION_STRING") {
		t.Fatalf("bad URI: %v", err)
	}
}

func TestOpErrorText(t *testing.T) {
	err := &OpError{Op: "Get", Domain: "signal", Key: "a/b", Err: errorf(ErrNotFound, "x")}
	if got := err.Error(); got != "persistgen: signal.Get [a/b]: not found: x" {
		t.Fatalf("%q", got)
	}
	if !errors.Is(err, ErrNotFound) {
		t.Fatal("errors.Is lost the sentinel")
	}
}

// CC_REDIS_CLUSTER lists a cluster's seed nodes; a cluster has database 0
// only, and an address must be host:port.
func TestRedisClusterConfig(t *testing.T) {
	c := configFrom(func(k string) (string, bool) {
		if k == "CC_REDIS_CLUSTER" {
			return " 127.0.0.1:7000, 127.0.0.1:7001 ,,", true
		}
		return "", false
	})
	if len(c.RedisClusterAddrs) != 2 || c.RedisClusterAddrs[0] != "127.0.0.1:7000" || c.RedisClusterAddrs[1] != "127.0.0.1:7001" {
		t.Fatalf("RedisClusterAddrs = %q", c.RedisClusterAddrs)
	}
	o, err := c.withDefaults().redisOptions()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.redisCluster(o)
	if err != nil || cc == nil {
		t.Fatalf("redisCluster = %v, %v", cc, err)
	}
	_ = cc.Close()
	o.DB = 2
	if _, err := c.redisCluster(o); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "database 0") {
		t.Fatalf("a cluster with database 2: %v", err)
	}
	o.DB = 0
	c.RedisClusterAddrs = []string{"nohost"}
	if _, err := c.redisCluster(o); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "host:port") {
		t.Fatalf("a bad cluster address: %v", err)
	}
}

func TestCompiledFilter(t *testing.T) {
	// testSchema's RedisOrder differs from its index order; the filter
	// follows the index.
	c := mustCompile(t, testSchema())
	got := c.filter([]any{"BTC", "macd", "binance", "", true})
	want := bson.D{{Key: "symbol", Value: "BTC"}, {Key: "strategyName", Value: "macd"}, {Key: "exchangeName", Value: "binance"},
		{Key: "frameName", Value: ""}, {Key: "backtest", Value: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("filter (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(bson.D{{Key: "symbol", Value: "BTC"}}, c.filter([]any{"BTC"})); diff != "" {
		t.Fatalf("prefix filter (-want +got):\n%s", diff)
	}
}
