package runtime

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/persistgen/persistgen/internal/cache"
)

// RedisClient is the part of go-redis the runtime uses. *redis.Client,
// *redis.ClusterClient and *redis.Ring all satisfy it; batches are pipelines
// of single-key commands so that they work on a cluster too. The caches
// themselves live in internal/cache, which documents their protocol.
type RedisClient interface {
	Get(ctx context.Context, key string) *redis.StringCmd
	Set(ctx context.Context, key string, value any, expiration time.Duration) *redis.StatusCmd
	Del(ctx context.Context, keys ...string) *redis.IntCmd
	Ping(ctx context.Context) *redis.StatusCmd
	Pipeline() redis.Pipeliner
	AddHook(hook redis.Hook)
	Close() error
	// Scripter runs the value cache's Lua scripts (EVALSHA, EVAL).
	redis.Scripter
}

// DefaultLocalCacheEntries is the in-process tier's size when
// Config.LocalCacheEntries is zero.
const DefaultLocalCacheEntries = cache.DefaultLocalEntries

// DefaultSeriesCacheBytes is the series tier's bound when
// Config.SeriesCacheBytes is zero.
const DefaultSeriesCacheBytes = cache.DefaultSeriesBytes
