package repo

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestRenamedAxisIsTheKeysLastPart(t *testing.T) {
	q := Quote{OpenedAt: 120000, Bid: 1, Ask: 2}
	data, err := bson.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := bson.Raw(data).LookupErr("ts"); err != nil || v.Double() != 120000 {
		t.Fatalf("the axis is stored as ts: %v, %v", v, err)
	}
	rk, err := QuoteKey{Symbol: "BTC", Step: "1m", Ts: 120000}.RedisKey()
	if err != nil || rk != "quote_cache:BTC:1m:120000" {
		t.Fatalf("RedisKey = %q, %v", rk, err)
	}
}
