package tests

// Helpers shared by the tests of several subjects.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// storedDoc reads the document filter selects in coll directly, reporting
// whether there is one.
func storedDoc(t *testing.T, ctx context.Context, env *testenv.Env, coll string, filter bson.D) (bson.Raw, bool) {
	t.Helper()
	raw, err := env.Conn.Database().Collection(coll).FindOne(ctx, filter).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false
	}
	must(t, err)
	return raw, true
}

// hostOf returns the host:port of a single-host connection string (a
// proxy's target), skipping the test when it names several.
func hostOf(t *testing.T, uri string) string {
	t.Helper()
	rest := uri[strings.Index(uri, "://")+3:]
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if strings.Contains(rest, ",") {
		t.Skip("the proxy test needs a single-host connection string")
	}
	return rest
}

// patience bounds a wait for something that must happen, so that a test
// whose behaviour broke fails rather than hangs. It is long enough for the
// busiest machine: it never judges the machine's speed. (ctxT, each test's
// context, is two minutes.)
const patience = time.Minute

// beyondTheTest is a Config.ReadyTimeout longer than a test's context
// (ctxT). A test that wants a refusal (a wrong password, an untrusted
// certificate) reported as final, rather than waited on, gives its Conn
// this bound and checks the error's kind: a refusal the guard waited on
// would end with the caller's context instead, however fast the machine.
const beyondTheTest = 10 * time.Minute

// mongoWaitEnded reports whether err is the guard's wait for MongoDB that
// ended before MongoDB's readiness probe did: with a short
// Config.ReadyTimeout, what a busy machine causes rather than the
// behaviour under test.
func mongoWaitEnded(err error) bool {
	return errors.Is(err, runtime.ErrUnavailable) && strings.Contains(err.Error(), "mongodb at ") &&
		strings.Contains(err.Error(), "did not answer within")
}

// shortReadyTimeouts runs round with a Config.ReadyTimeout of first, and
// again with twice as long while round's error is mongoWaitEnded, until
// round returns nil; any other error fails the test, and so does a bound
// beyond patience. A test gives its Conns a short ReadyTimeout to see a
// readiness wait end soon (for a Redis that is down, or a MongoDB cut
// off); the same bound covers the probe of the MongoDB that answers, which
// a busy machine can make slower than any short bound.
func shortReadyTimeouts(t *testing.T, first time.Duration, round func(readyTimeout time.Duration) error) {
	t.Helper()
	for ready := first; ; ready *= 2 {
		err := round(ready)
		switch {
		case err == nil:
			return
		case !mongoWaitEnded(err):
			t.Fatal(err)
		case 2*ready > patience:
			t.Fatalf("with a ReadyTimeout of %s: %v", ready, err)
		}
		t.Logf("with a ReadyTimeout of %s, MongoDB's readiness probe did not finish (%v): again with %s", ready, err, 2*ready)
	}
}

// openReady opens a Conn on env's database with mod and waits until it is
// ready, with a ReadyTimeout of first or, on a machine where MongoDB's
// probe takes longer, more (see shortReadyTimeouts): short, so that the
// wait for a Redis that is down ends soon.
func openReady(t *testing.T, env *testenv.Env, first time.Duration, mod ...func(*runtime.Config)) *runtime.Conn {
	t.Helper()
	var c *runtime.Conn
	shortReadyTimeouts(t, first, func(readyTimeout time.Duration) error {
		c = env.Open(t, append(mod[:len(mod):len(mod)], func(cfg *runtime.Config) { cfg.ReadyTimeout = readyTimeout })...)
		return c.Ready(ctxT(t))
	})
	return c
}
