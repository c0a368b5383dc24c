package runtime

// Helpers of the tests that need no server: a Conn that never touches one,
// a schema, BSON values and documents.

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// pureKey is a key given as its values.
type pureKey []any

func (k pureKey) KeyValues() []any { return k }

type purePayload struct {
	Name string  `bson:"name"`
	V    float64 `bson:"v"`
}

// pureNow is the clock of pureConn; pureNowMs is what Repo.now makes of it.
var (
	pureNow   = time.Date(2024, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("X", 3600))
	pureNowMs = time.Date(2024, 3, 4, 4, 6, 7, 891_000_000, time.UTC)
)

// pureConn is a Conn that never touches a server: a fixed clock and, when
// caps is non-nil, capabilities as if Ready had succeeded.
func pureConn(cfg Config, caps *Capabilities) *Conn {
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return pureNow }
	}
	c := &Conn{cfg: cfg}
	if caps != nil {
		c.server = ServerInfo{Capabilities: *caps}
		c.ready.Store(true)
	}
	return c
}

func pureRepo[P any](t *testing.T, s *Schema, c *Conn) *Repo[pureKey, P] {
	t.Helper()
	return &Repo[pureKey, P]{conn: c, s: mustCompile(t, s)}
}

// pureCandles has a typed three-field key, when and removed.
func pureCandles() *Schema {
	return &Schema{Domain: "candle", Collection: "candle-items", RedisPrefix: "candle_cache",
		Key:     []KeyField{{Name: "symbol", Type: TypeString}, {Name: "backtest", Type: TypeBool}, {Name: "timestamp", Type: TypeFloat64}},
		HasWhen: true, HasRemoved: true, Payload: "payload"}
}

func pureRaw(t *testing.T, v any) bson.RawValue {
	t.Helper()
	typ, data, err := bson.MarshalValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return bson.RawValue{Type: typ, Value: data}
}

func pureDoc(t *testing.T, d bson.D) []byte {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pureWantErr(t *testing.T, name string, err, kind error, want string) {
	t.Helper()
	if !errors.Is(err, kind) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v; want %v containing %q", name, err, kind, want)
	}
}
