package cache

import (
	"context"
	"embed"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The scripts are the .lua files under lua/. Each opens by naming its
// arguments, and each has one Go type below whose argv method builds them
// in that order from named fields (a test holds the two to each other).
// Every script but release.lua runs with lua/lib.lua before it.
//
// The first three arguments are the same in every script that takes the
// library: the process, a write mark's life and the longest copy life.

//go:embed lua/*.lua
var luaFiles embed.FS

// script is a script and its source: pipelines send the source (EVAL),
// since a pipeline cannot fall back from EVALSHA command by command.
type script struct {
	*redis.Script
	src string
}

// scripts are a Conn's six scripts.
type scripts struct {
	read, fill, release, begin, end, clear script
}

func newScripts() scripts {
	lib := luaSource("lib.lua")
	with := func(name string) script {
		src := lib + "\n" + luaSource(name)
		return script{redis.NewScript(src), src}
	}
	rel := luaSource("release.lua")
	return scripts{read: with("read.lua"), fill: with("fill.lua"), release: script{redis.NewScript(rel), rel},
		begin: with("begin.lua"), end: with("end.lua"), clear: with("clear.lua")}
}

func (s scripts) all() []script { return []script{s.read, s.fill, s.release, s.begin, s.end, s.clear} }

// luaSource reads an embedded script; one that is missing is a build
// defect, caught by every test.
func luaSource(name string) string {
	b, err := luaFiles.ReadFile("lua/" + name)
	if err != nil {
		panic("persistgen: embedded script " + name + ": " + err.Error())
	}
	return string(b)
}

// load asks Redis to keep every script (SCRIPT LOAD; a cluster client
// sends it to every shard, a ring to one), so that the first EVALSHA of
// each does not come back NOSCRIPT and cost a second round trip. It stops
// at the first failure and returns it; a Redis that refuses (an ACL
// without SCRIPT LOAD) or forgets (a restart, SCRIPT FLUSH) is answered by
// EVALSHA's fallback to EVAL.
func (s scripts) load(ctx context.Context, rdb Client) error {
	for _, sc := range s.all() {
		if err := sc.Load(ctx, rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

// common are the first three arguments of every script but release.lua.
type common struct {
	Proc   string // the process: its copies' and tokens' name
	MarkMs int64  // a write mark's life: how late a write may still land
	CopyMs int64  // the longest copy life any process may have been granted
}

func (c common) argv(more ...any) []any {
	return append([]any{c.Proc, c.MarkMs, c.CopyMs}, more...)
}

// readArgs are read.lua's arguments.
type readArgs struct {
	common
	Token   string // the lease this reader would hold
	LeaseMs int64  // the lease's life
	GrantMs int64  // a local copy's life asked for (0: value mode)
	WaitMs  int64  // how long another reader's lease makes this one wait
}

func (a readArgs) argv() []any { return a.common.argv(a.Token, a.LeaseMs, a.GrantMs, a.WaitMs) }

// fillArgs are fill.lua's arguments.
type fillArgs struct {
	common
	Token   string // the lease READ granted
	Value   string // D<document> or A (absent)
	LifeMs  int64  // the value's life, from the lease's grant
	GrantMs int64  // a local copy's life asked for (0: value mode)
}

func (a fillArgs) argv() []any { return a.common.argv(a.Token, a.Value, a.LifeMs, a.GrantMs) }

// releaseArgs are release.lua's arguments.
type releaseArgs struct {
	Token string // the lease its holder gives back
}

func (a releaseArgs) argv() []any { return []any{a.Token} }

// beginArgs are begin.lua's arguments.
type beginArgs struct {
	common
	Token string // names the write in the mark
}

func (a beginArgs) argv() []any { return a.common.argv(a.Token) }

// endArgs are end.lua's arguments.
type endArgs struct {
	common
	Token   string // the write's name in the mark
	Epoch   int64  // the epoch BEGIN replied
	Alone   bool   // BEGIN found no other writer
	BeganAt int64  // BEGIN's time, Redis ms
	Row     string // the row to keep (D<document>), "" for none
	TTLMs   int64  // the value's life, from BeganAt
	GrantMs int64  // a local copy's life asked for (0: value mode)
}

func (a endArgs) argv() []any {
	alone := "0"
	if a.Alone {
		alone = "1"
	}
	return a.common.argv(a.Token, strconv.FormatInt(a.Epoch, 10), alone, a.BeganAt, a.Row, a.TTLMs, a.GrantMs)
}

// clearArgs are clear.lua's arguments.
type clearArgs struct {
	common
}

func (a clearArgs) argv() []any { return a.common.argv() }

// run runs a one-key script on each key with the same arguments and
// returns each reply: one round trip (a pipeline for several keys, each a
// command of its own, so that it works on a cluster), bounded by a second.
func run(ctx context.Context, rdb Client, sc script, keys []string, argv []any) ([]any, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if len(keys) == 1 {
		r, err := sc.Run(ctx, rdb, keys, argv...).Result()
		return []any{r}, err
	}
	p := rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(keys))
	for i, k := range keys {
		cmds[i] = p.Eval(ctx, sc.src, []string{k}, argv...)
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]any, len(keys))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// ints reads a script's array reply of n integers (missing ones are 0).
func ints(r any, n int) []int64 {
	out := make([]int64, n)
	a, _ := r.([]any)
	for i := range min(n, len(a)) {
		out[i], _ = a[i].(int64)
	}
	return out
}
