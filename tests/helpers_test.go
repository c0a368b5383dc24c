package tests

// Helpers shared by the tests of several subjects.

import (
	"context"
	"errors"
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
