package store

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/runtime"
)

func TestKeysSpellAndCheck(t *testing.T) {
	rk, err := PairsKey{Owner: "a:b%", Live: true}.RedisKey()
	if err != nil || rk != "pair_cache:on:a%3Ab%25" {
		t.Fatalf("PairsKey.RedisKey = %q, %v", rk, err)
	}
	if rk, _ := (PairsKey{Owner: "x", Live: false}).RedisKey(); rk != "pair_cache:off:x" {
		t.Fatalf("false word: %q", rk)
	}
	if err := (FeedKey{Channel: "", ItemID: "i"}).Validate(); err != nil {
		t.Fatalf("an optional part may be empty: %v", err)
	}
	if err := (FeedKey{Channel: "c", ItemID: ""}).Validate(); !errors.Is(err, runtime.ErrInvalidKey) {
		t.Fatalf("empty item id: %v", err)
	}
	f, err := BarKey{Venue: "v", Interval: "1m", T: 60000}.Filter()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bson.D{{Key: "venue", Value: "v"}, {Key: "interval", Value: "1m"}, {Key: "t", Value: int64(60000)}}, f); diff != "" {
		t.Fatal(diff)
	}
	var k BarKey
	raw, _ := bson.Marshal(bson.D{{Key: "venue", Value: "v"}, {Key: "interval", Value: "5m"}, {Key: "t", Value: float64(300000)}, {Key: "close", Value: 1.5}})
	if err := k.DecodeKey(raw); err != nil || k != (BarKey{Venue: "v", Interval: "5m", T: 300000}) {
		t.Fatalf("DecodeKey = %+v, %v", k, err)
	}
}

func TestTuplesAreArraysAndReadBothForms(t *testing.T) {
	in := struct{ P []Pair }{P: []Pair{{Left: "k", Right: Item{ID: "i"}}}}
	data, err := bson.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	v, err := bson.Raw(data).LookupErr("p", "0")
	if err != nil || v.Type != bson.TypeArray {
		t.Fatalf("a pair is stored as %v (%v), want an array", v.Type, err)
	}
	var out struct{ P []Pair }
	if err := bson.Unmarshal(data, &out); err != nil || out.P[0].Left != "k" || out.P[0].Right.ID != "i" {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	asDoc, _ := bson.Marshal(bson.D{{Key: "p", Value: bson.A{bson.D{{Key: "left", Value: "d"}, {Key: "right", Value: bson.D{{Key: "id", Value: "j"}}}}}}})
	out = struct{ P []Pair }{}
	if err := bson.Unmarshal(asDoc, &out); err != nil || out.P[0].Left != "d" || out.P[0].Right.ID != "j" {
		t.Fatalf("document form: %+v, %v", out, err)
	}
}

func TestShapeKeepsAbsentAndNullFields(t *testing.T) {
	stored, _ := bson.Marshal(bson.D{{Key: "id", Value: "x"}, {Key: "tag", Value: nil}, {Key: "other", Value: int32(7)}})
	var it Tagged
	if err := bson.Unmarshal(stored, &it); err != nil {
		t.Fatal(err)
	}
	back, err := bson.Marshal(it)
	if err != nil {
		t.Fatal(err)
	}
	var got bson.D
	if err := bson.Unmarshal(back, &got); err != nil {
		t.Fatal(err)
	}
	want := bson.D{{Key: "id", Value: "x"}, {Key: "tag", Value: nil}, {Key: "other", Value: int32(7)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("written back (-want +got): %s", diff)
	}
}

func TestSchemasListEveryDomainWithItsIndexes(t *testing.T) {
	var names []string
	for _, s := range Schemas() {
		names = append(names, s.Domain)
	}
	if diff := cmp.Diff([]string{"bar", "pairs", "feed", "journal", "cache", "blob"}, names); diff != "" {
		t.Fatal(diff)
	}
	var ix []string
	for _, i := range FeedSchema().AllIndexes() {
		ix = append(ix, i.Name)
	}
	if diff := cmp.Diff([]string{"channel_1_itemId_1", "channel_1", "itemId_1", "channel_1_createDate_-1"}, ix); diff != "" {
		t.Fatal(diff)
	}
}
