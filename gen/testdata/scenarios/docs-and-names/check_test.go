package repo

import "testing"

// The doc text above is only comments: no Injected or Bad was declared
// (this file would not compile if one were, as both names are used here).
var Injected, Bad = "not", "declared"

func TestDocsStayComments(t *testing.T) {
	if Injected != "not" || Bad != "declared" {
		t.Fatal("unreachable")
	}
	n := Node{ID: "x", Next: &Node{ID: "y"}, Children: []Node{{ID: "z"}}}
	if rk, err := (ZzzKey{Make: "m", Runtime: "r", Any: "a", Len: "l", ID: n.ID}).RedisKey(); err != nil || rk != "zzz*/cache:m:r:a:l:x" {
		t.Fatalf("RedisKey = %q, %v", rk, err)
	}
}
