package repo

import (
	"slices"
	"testing"
)

func TestShardKeyReachesTheSchema(t *testing.T) {
	s := BarSchema()
	if s.Shard == nil || !slices.Equal(s.Shard.Fields, []string{"exchange", "symbol", "interval"}) || s.Shard.Hashed {
		t.Fatalf("shard = %+v", s.Shard)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	// A shard key that is not the key's prefix is refused by the schema
	// too (a Schema built in code).
	s.Shard.Fields = []string{"symbol"}
	if err := s.Validate(); err == nil {
		t.Fatal("Validate accepted a shard key that is not a prefix of the key")
	}
}
