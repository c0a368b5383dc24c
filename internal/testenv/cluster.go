package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartRedisCluster starts a loopback Redis Cluster of the test's own: 3
// masters with one replica each (redis-server, formed by redis-cli
// --cluster create), stopped when the test ends, for tests that break a
// cluster (migrate its slots, kill a master). It returns the nodes'
// addresses. The nodes' failure timeout is 2 s, so a killed master's
// replica takes over within a few seconds.
func StartRedisCluster(t testing.TB) []string {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		msg := "needs redis-server and redis-cli on PATH to start a Redis Cluster of its own (apt-get install redis-server)"
		if os.Getenv("PERSIST_TEST_REQUIRE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var addrs []string
	for range 6 {
		port := clusterPort(t)
		StartRedisServerOn(t, port, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0")
		WaitPort(t, port)
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// Bounded for a cluster that never forms, not for a slow machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, a := range addrs {
		if err := waitClusterOK(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	// A replica that has not finished its first sync cannot take over.
	for _, a := range addrs {
		if err := waitReplicaSynced(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	return addrs
}

// clusterPort returns a free port whose cluster bus port (port + 10000) is
// free too, both below the kernel's ephemeral range, so that no outgoing
// connection of the tests can take either.
func clusterPort(t testing.TB) int {
	t.Helper()
	for range 200 {
		p := 12000 + rand.IntN(10000)
		if free(p) && free(p+10000) {
			return p
		}
	}
	t.Fatal("no free port pair (port, port+10000) for a cluster node")
	return 0
}

func free(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// waitReplicaSynced waits, where addr is a replica, until its link to its
// master is up.
func waitReplicaSynced(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && (strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up")) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Redis Cluster replica %s did not sync with its master: %v, %q", addr, err, info)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitClusterOK waits until the node at addr reports cluster_state:ok.
func waitClusterOK(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Redis Cluster node %s did not reach cluster_state:ok: %v, %q", addr, err, info)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
