package repo

import (
	"errors"
	"testing"

	"github.com/persistgen/persistgen/runtime"
)

func TestMinimalKey(t *testing.T) {
	if rk, err := (NoteKey{NoteID: "n:1"}).RedisKey(); err != nil || rk != "note_cache:n%3A1" {
		t.Fatalf("RedisKey = %q, %v", rk, err)
	}
	err := NoteKey{}.Validate()
	var op *runtime.OpError
	if !errors.Is(err, runtime.ErrInvalidKey) || !errors.As(err, &op) || op.Op != "Validate" || op.Domain != "note" {
		t.Fatalf("empty key: %#v", err)
	}
}
