// Command serverinfo prints what the test servers are, for the test and
// bench scripts: the MongoDB-wire server's product and version with the
// capabilities persistgen probed, and the Redis version. It never prints a
// connection string (they may carry passwords).
//
//	go run ./internal/testenv/serverinfo -mongo URI -redis URL
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

func main() {
	mongoURI := flag.String("mongo", os.Getenv("PERSIST_TEST_MONGO_URI"), "MongoDB connection string")
	redisURL := flag.String("redis", os.Getenv("PERSIST_TEST_REDIS_URL"), "Redis URL")
	flag.Parse()
	if err := run(*mongoURI, *redisURL); err != nil {
		fmt.Fprintln(os.Stderr, "serverinfo:", err)
		os.Exit(1)
	}
}

func run(mongoURI, redisURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A database of its own, so that two runs on one server never share
	// the probe collection.
	conn, err := runtime.Open(runtime.Config{MongoURI: mongoURI, Database: "persistgen_serverinfo_" + testenv.ID(), DisableRedis: true})
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := conn.Ready(ctx); err != nil {
		return err
	}
	defer conn.Database().Drop(ctx)
	s := conn.Server()
	c := s.Capabilities
	var have []string
	for _, f := range []struct {
		on   bool
		name string
	}{{c.NestedArrays, "nested arrays"}, {c.Infinity, "±Inf"}, {c.NaN, "NaN"}, {c.NulInStrings, "NUL in strings"}, {c.RareTypes, "rare BSON types"},
		{c.FindAndModifyProjection, "findAndModify projection"}, {c.BulkResults, "exact bulk results"}} {
		if f.on {
			have = append(have, f.name)
		}
	}
	if len(have) == 0 {
		have = []string{"none of nested arrays, ±Inf, NaN, NUL in strings, rare BSON types, findAndModify projection, exact bulk results"}
	}
	fmt.Printf("MongoDB wire: %s; capabilities: %s; bulk writes of up to %d\n", s.Product, strings.Join(have, ", "), c.MaxBulk)

	o, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("redis URL: %v", err)
	}
	rdb := redis.NewClient(o)
	defer rdb.Close()
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("redis at %s: %v", o.Addr, err)
	}
	version := "unknown"
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			version = v
		}
	}
	fmt.Printf("Redis: %s at %s\n", version, o.Addr)
	return nil
}
