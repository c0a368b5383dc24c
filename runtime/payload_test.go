package runtime

// Payloads of records and of record sequences.

import (
	"errors"
	"iter"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pureSeq yields a record per payload name, then err if non-nil; stopped
// reports whether the consumer stopped early.
func pureSeq(names []string, err error, stopped *bool) iter.Seq2[Record[pureKey, purePayload], error] {
	return func(yield func(Record[pureKey, purePayload], error) bool) {
		for _, n := range names {
			if !yield(Record[pureKey, purePayload]{Payload: purePayload{Name: n}}, nil) {
				*stopped = true
				return
			}
		}
		if err != nil && !yield(Record[pureKey, purePayload]{}, err) {
			*stopped = true
			return
		}
		if err != nil {
			yield(Record[pureKey, purePayload]{Payload: purePayload{Name: "after"}}, nil)
		}
	}
}

func TestPayloadOf(t *testing.T) {
	rec := Record[pureKey, purePayload]{Payload: purePayload{Name: "a"}}
	if p, ok, err := PayloadOf(rec, nil); p.Name != "a" || !ok || err != nil {
		t.Errorf("row: %v %v %v", p, ok, err)
	}
	notFound := &OpError{Op: "Get", Domain: "d", Err: errorf(ErrNotFound, "x")}
	if p, ok, err := PayloadOf(rec, notFound); p != (purePayload{}) || ok || err != nil {
		t.Errorf("not found: %v %v %v", p, ok, err)
	}
	boom := errors.New("boom")
	if p, ok, err := PayloadOf(rec, boom); p != (purePayload{}) || ok || err != boom {
		t.Errorf("error: %v %v %v", p, ok, err)
	}
}

func TestPayloads(t *testing.T) {
	var stopped bool
	got, err := Payloads(pureSeq([]string{"a", "b", "c"}, nil, &stopped), 5)
	if err != nil || stopped {
		t.Fatal(err, stopped)
	}
	if diff := cmp.Diff([]purePayload{{Name: "a"}, {Name: "b"}, {Name: "c"}}, got); diff != "" || cap(got) != 5 {
		t.Fatalf("Payloads cap %d (-want +got):\n%s", cap(got), diff)
	}
	got, err = Payloads(pureSeq(nil, nil, &stopped), -1)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty: %#v %v", got, err)
	}
	boom := errors.New("boom")
	got, err = Payloads(pureSeq([]string{"a"}, boom, &stopped), 0)
	if got != nil || err != boom || !stopped {
		t.Fatalf("error: %v %v, stopped %v", got, err, stopped)
	}

	stopped = false
	recs, err := Collect(pureSeq([]string{"a", "b"}, boom, &stopped))
	if err != boom || !stopped || len(recs) != 2 || recs[1].Payload.Name != "b" {
		t.Fatalf("Collect = %v, %v, stopped %v", recs, err, stopped)
	}
	if diff := cmp.Diff([]SortField{{Field: "createDate", Desc: true}}, NewestFirst()); diff != "" {
		t.Fatalf("NewestFirst (-want +got):\n%s", diff)
	}
}
