package cache

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// Every script opens by naming its arguments, and its Go type builds them
// in that order: the names in the .lua file are the type's fields, in
// order (snake case), and argv puts each field's value at its name's
// position.
func TestScriptArgumentsAreNamedInOrder(t *testing.T) {
	cases := []struct {
		file string
		args any // a value whose fields are all set, each to a value of its own
		argv func(any) []any
	}{
		{"read.lua", readArgs{common{"p", 2, 3}, "tok", 5, 6, 7}, func(a any) []any { return a.(readArgs).argv() }},
		{"fill.lua", fillArgs{common{"p", 2, 3}, "tok", "val", 6, 7}, func(a any) []any { return a.(fillArgs).argv() }},
		{"release.lua", releaseArgs{"tok"}, func(a any) []any { return a.(releaseArgs).argv() }},
		{"begin.lua", beginArgs{common{"p", 2, 3}, "tok"}, func(a any) []any { return a.(beginArgs).argv() }},
		{"end.lua", endArgs{common{"p", 2, 3}, "tok", 5, true, 7, "row", 9, 10}, func(a any) []any { return a.(endArgs).argv() }},
		{"clear.lua", clearArgs{common{"p", 2, 3}}, func(a any) []any { return a.(clearArgs).argv() }},
	}
	for _, c := range cases {
		names, numeric := luaArgNames(t, c.file)
		fields, values := flatFields(reflect.ValueOf(c.args))
		if len(names) != len(fields) {
			t.Errorf("%s names %d arguments %v; its Go type has %d fields %v", c.file, len(names), names, len(fields), fields)
			continue
		}
		argv := c.argv(c.args)
		if len(argv) != len(names) {
			t.Errorf("%s: argv builds %d arguments, the script names %d", c.file, len(argv), len(names))
			continue
		}
		for i, n := range names {
			if n != fields[i] {
				t.Errorf("%s: ARGV[%d] is %s in the script, %s in Go", c.file, i+1, n, fields[i])
			}
			// Numbers are read with tonumber, strings (and bools, sent as
			// "1"/"0", and the epoch, compared as a string) as they are.
			if _, isInt := values[i].(int64); isInt != numeric[i] && fields[i] != "epoch" {
				t.Errorf("%s: %s is a %T in Go, but the script reads it with tonumber: %v", c.file, n, values[i], numeric[i])
			}
			if got, want := argString(argv[i]), argString(values[i]); got != want {
				t.Errorf("%s: ARGV[%d] (%s) = %s, want the field's value %s", c.file, i+1, n, got, want)
			}
		}
	}
}

var argLine = regexp.MustCompile(`^local (\w+) = (?:tonumber\()?ARGV\[(\d+)\]`)

// luaArgNames reads a script's opening lines: its arguments' names, which
// must be ARGV[1], ARGV[2], ... in order and open the file.
func luaArgNames(t *testing.T, file string) (names []string, numeric []bool) {
	t.Helper()
	for i, line := range strings.Split(luaSource(file), "\n") {
		m := argLine.FindStringSubmatch(line)
		if m == nil {
			if i == 0 {
				t.Errorf("%s does not open by naming its arguments: %q", file, line)
			}
			break
		}
		if n, _ := strconv.Atoi(m[2]); n != len(names)+1 {
			t.Errorf("%s: %s is ARGV[%d], want ARGV[%d]", file, m[1], n, len(names)+1)
		}
		names = append(names, m[1])
		numeric = append(numeric, strings.Contains(line, "tonumber(ARGV["))
	}
	// A later use of ARGV would bypass the names.
	for _, line := range strings.Split(luaSource(file), "\n")[len(names):] {
		if strings.Contains(line, "ARGV[") {
			t.Errorf("%s uses ARGV past its opening lines: %q", file, line)
		}
	}
	return names, numeric
}

// flatFields lists a struct's fields in order, an embedded struct's in its
// place, as snake-case names, with their values.
func flatFields(v reflect.Value) (names []string, values []any) {
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Anonymous {
			n, vs := flatFields(v.Field(i))
			names, values = append(names, n...), append(values, vs...)
			continue
		}
		names = append(names, snake(f.Name))
		values = append(values, v.Field(i).Interface())
	}
	return names, values
}

// snake turns a Go field name into the script's: TTLMs -> ttl_ms.
func snake(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// argString is an argument as Redis receives it.
func argString(v any) string {
	if b, ok := v.(bool); ok {
		if b {
			return "1"
		}
		return "0"
	}
	return fmt.Sprint(v)
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{"TTLMs": "ttl_ms", "Proc": "proc", "BeganAt": "began_at", "GrantMs": "grant_ms"} {
		if got := snake(in); got != want {
			t.Errorf("snake(%s) = %s, want %s", in, got, want)
		}
	}
}
