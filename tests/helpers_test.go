package tests

// Helpers shared by the tests of several subjects.

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/persistgen/persistgen/internal/testenv"
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
