package tests

// List: the order of rows, and the arguments it refuses.

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 7: newest first broke ties wrongly when PutMany (client _ids) and
// Put (server _ids) wrote in one millisecond. Writes of one millisecond read
// back in the order this process made them, whichever method made them.
func TestNewestFirstFollowsWriteOrderAcrossPutAndPutMany(t *testing.T) {
	t.Parallel()
	frozen := time.UnixMilli(1_700_000_000_000)
	env := testenv.New(t, func(c *runtime.Config) { c.Now = func() time.Time { return frozen } })
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	var order []string
	for round := 0; round < 5; round++ {
		a, b, c, d := fmt.Sprintf("%d-a", round), fmt.Sprintf("%d-b", round), fmt.Sprintf("%d-c", round), fmt.Sprintf("%d-d", round)
		must(t, r.Put(ctx, memKey{"s", "b", a}, memData{}, ms(1)))
		must(t, r.PutMany(ctx, []runtime.Item[memKey, memData]{{Key: memKey{"s", "b", b}, When: ms(1)}, {Key: memKey{"s", "b", c}, When: ms(1)}}))
		_, err := r.Insert(ctx, memKey{"s", "b", d}, memData{}, ms(1))
		must(t, err)
		order = append(order, a, b, c, d)
	}
	rows, err := runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"s", "b"}, Sort: runtime.NewestFirst()}))
	must(t, err)
	var got []string
	for _, row := range rows {
		got = append(got, row.Key.MemoryID)
	}
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	if fmt.Sprint(got) != fmt.Sprint(order) {
		t.Fatalf("newest first = %v, want %v", got, order)
	}
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 12: List with a bound or prefix of the wrong type returned no rows
// and no error; a repeated sort field dropped the connection. Each is an
// error that says what is wrong, and the Conn keeps working.
func TestListArgumentsOfTheWrongTypeAreErrors(t *testing.T) {
	typed := candleSchema()
	for i, ty := range []runtime.KeyType{runtime.TypeString, runtime.TypeString, runtime.TypeString, runtime.TypeFloat64} {
		typed.Key[i].Type = ty
	}
	env := setup(t, typed)
	ctx := ctxT(t)
	r := newRepo[candleKey, candle](t, env.Conn, typed)
	must(t, r.Put(ctx, candleKey{"ex", "S", "1m", 60000}, candle{Close: 1}, time.Time{}))
	bad := []struct {
		name string
		o    runtime.ListOptions
		want error
	}{
		{"prefix of the wrong type", runtime.ListOptions{Prefix: []any{42}}, runtime.ErrInvalidKey},
		{"range bound of the wrong type", runtime.ListOptions{Prefix: []any{"ex", "S", "1m"}, Range: &runtime.Range{Field: "timestamp", From: "0"}}, runtime.ErrInvalidArgument},
		{"date bound that is not a time", runtime.ListOptions{Range: &runtime.Range{Field: "createDate", From: 5}}, runtime.ErrInvalidArgument},
		{"repeated sort field", runtime.ListOptions{Sort: []runtime.SortField{{Field: "createDate"}, {Field: "createDate", Desc: true}}}, runtime.ErrInvalidArgument},
	}
	for _, b := range bad {
		_, err := runtime.Collect(r.List(ctx, b.o))
		if !errors.Is(err, b.want) {
			t.Fatalf("%s: %v; want %v", b.name, err, b.want)
		}
	}
	// An int bound for a float64 field is converted, not refused.
	rows, err := runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"ex", "S", "1m"}, Range: &runtime.Range{Field: "timestamp", From: 0, To: int64(120000)}}))
	must(t, err)
	if len(rows) != 1 {
		t.Fatalf("after the errors, a valid list returned %d rows", len(rows))
	}
}
