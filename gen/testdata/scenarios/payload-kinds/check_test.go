package repo

import (
	"errors"
	"math"
	"testing"

	"github.com/persistgen/persistgen/runtime"
)

func TestNumberAndBoolKeyParts(t *testing.T) {
	rk, err := CountKey{Name: "n", N: -3, X: 0.5, On: true}.RedisKey()
	if err != nil || rk != "count_cache:n:-3:0.5:true" {
		t.Fatalf("RedisKey = %q, %v", rk, err)
	}
	if err := (CountKey{Name: "n", X: math.NaN()}).Validate(); !errors.Is(err, runtime.ErrInvalidKey) {
		t.Fatalf("NaN key part: %v", err)
	}
	if s := SettingsSchema(); !s.HasWhen || s.Payload != "settings" {
		t.Fatalf("settings schema: %+v", s)
	}
	if s := RecordSchema(); !s.HasWhen || s.Payload != "payload" {
		t.Fatalf("record schema: %+v", s)
	}
}
