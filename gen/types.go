package gen

import (
	"fmt"
	"go/token"
	"slices"
	"strings"
	"unicode"
)

type refKind int

const (
	refBuiltin refKind = iota
	refDeclared
	refQualified
	refSlice
	refMap
	refPointer
)

// TypeRef is a parsed payload or field type: a builtin, a type declared in
// the manifest, a type named by import path ("time.Time",
// "example.com/pkg.Type"), or []T, map[string]T, *T of those.
type TypeRef struct {
	Kind refKind
	Name string // builtin, declared or qualified name
	Path string // import path of a qualified type
	Elem *TypeRef
}

var builtins = map[string]bool{"string": true, "bool": true, "int": true, "int32": true, "int64": true, "float64": true, "any": true}

// parseType parses s; declared reports whether a name is declared in the
// manifest.
func parseType(s string, declared func(string) bool) (*TypeRef, error) {
	switch {
	case s == "":
		return nil, fmt.Errorf("no type given")
	case strings.HasPrefix(s, "[]"):
		e, err := parseType(s[2:], declared)
		return &TypeRef{Kind: refSlice, Elem: e}, err
	case strings.HasPrefix(s, "map[string]"):
		e, err := parseType(s[len("map[string]"):], declared)
		return &TypeRef{Kind: refMap, Elem: e}, err
	case strings.HasPrefix(s, "map["):
		return nil, fmt.Errorf("type %q: map keys must be string (BSON documents have string keys)", s)
	case strings.HasPrefix(s, "*"):
		e, err := parseType(s[1:], declared)
		return &TypeRef{Kind: refPointer, Elem: e}, err
	case builtins[s]:
		return &TypeRef{Kind: refBuiltin, Name: s}, nil
	case declared(s):
		return &TypeRef{Kind: refDeclared, Name: s}, nil
	}
	slash := strings.LastIndex(s, "/")
	dot := strings.LastIndex(s, ".")
	if dot > slash && dot > 0 {
		path, name := s[:dot], s[dot+1:]
		if !token.IsIdentifier(name) || !token.IsExported(name) || strings.ContainsAny(path, " \t[]*") {
			return nil, fmt.Errorf("type %q: a type from another package is written import/path.Name with an exported Name", s)
		}
		return &TypeRef{Kind: refQualified, Path: path, Name: name}, nil
	}
	return nil, fmt.Errorf("unknown type %q: use string, bool, int, int32, int64, float64, any, a type declared under `types`, import/path.Name, or []T, map[string]T, *T of those", s)
}

// String renders the type as Go source (qualified types by their last path
// element).
func (t *TypeRef) String() string {
	switch t.Kind {
	case refSlice:
		return "[]" + t.Elem.String()
	case refMap:
		return "map[string]" + t.Elem.String()
	case refPointer:
		return "*" + t.Elem.String()
	case refQualified:
		return t.Path[strings.LastIndex(t.Path, "/")+1:] + "." + t.Name
	}
	return t.Name
}

// declaredStruct returns the declared type name when t is one (or a pointer
// to one).
func (t *TypeRef) declaredStruct() string {
	if t.Kind == refPointer {
		t = t.Elem
	}
	if t.Kind == refDeclared {
		return t.Name
	}
	return ""
}

// GoName converts a BSON or domain name into an exported Go identifier:
// separators and leading underscores go, each part is capitalised, and "id"
// becomes "ID" (signalId -> SignalID, _isScheduled -> IsScheduled,
// candle-items -> CandleItems).
func GoName(name string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(name, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if strings.EqualFold(part, "id") {
			b.WriteString("ID")
			continue
		}
		r := []rune(part)
		r[0] = unicode.ToUpper(r[0])
		b.WriteString(string(r))
	}
	s := b.String()
	if n := len(s); n > 2 && s[n-2:] == "Id" && unicode.IsLower(rune(s[n-3])) {
		s = s[:n-2] + "ID"
	}
	return s
}

func validGoName(s string) bool { return token.IsIdentifier(s) && token.IsExported(s) }

// lowerIdent lowers the first letter of an exported Go name ("ID" as a
// whole): SignalID -> signalID, IDs -> ids.
func lowerIdent(s string) string {
	switch {
	case s == "":
		return s
	case s == "ID":
		return "id"
	case strings.HasPrefix(s, "ID"):
		return "id" + s[2:]
	}
	r := []rune(s)
	r[0] = unicode.ToLower(r[0])
	return string(r)
}

// localNames are the identifiers generated methods use for themselves: a
// parameter made from a key field must not take one.
func localNames() []string {
	return []string{
		// the generated methods' own parameters and variables
		"ctx", "r", "k", "v", "ok", "err", "items", "batch", "i", "it", "since", "limit", "asOf", "when", "out", "c", "raw", "t", "data",
		"validAt", "knownAt", "o",
		// the packages they call
		"runtime", "bson", "context", "errors", "iter", "time",
		// Go's predeclared identifiers
		"any", "append", "bool", "byte", "cap", "clear", "close", "comparable", "complex", "complex128", "complex64",
		"copy", "delete", "error", "false", "float32", "float64", "imag", "int", "int16", "int32", "int64", "int8",
		"iota", "len", "make", "max", "min", "new", "nil", "panic", "print", "println", "real", "recover", "rune",
		"string", "true", "uint", "uint16", "uint32", "uint64", "uint8", "uintptr",
	}
}

// lowerFirst makes a Go parameter name from a field's Go name; a keyword or
// a name generated code uses itself gets a trailing underscore.
func lowerFirst(s string) string {
	out := lowerIdent(s)
	if token.IsKeyword(out) || slices.Contains(localNames(), out) {
		out += "_"
	}
	return out
}
