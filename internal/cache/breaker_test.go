package cache

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

// A cluster's slot map is reloaded for failures a new map may mend, not
// for replies refusing a command.
func TestTopologyFailure(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{errors.New("dial tcp 127.0.0.1:7000: connect: connection refused"), true},
		{context.DeadlineExceeded, true},
		{replyErr("CLUSTERDOWN The cluster is down"), true},
		{replyErr("NOPERM this user has no permissions to run the 'info' command"), false},
		{replyErr("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{fmt.Errorf("value read: %w", replyErr("ERR user_script:1: boom")), false},
	} {
		if got := topologyFailure(c.err); got != c.want {
			t.Errorf("topologyFailure(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
