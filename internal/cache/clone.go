package cache

import (
	"reflect"
	"time"
)

// A local-mode hit hands out a deep copy of the record decoded once per
// copy, instead of decoding the document again: decoding is most of a hit's
// cost, and a caller that changes what it got must not change what the
// next caller gets. Clonable reports the types this copy handles; for the
// others every hit decodes.

// Clonable reports whether a cloner copies values of t completely: no
// channels, functions or unsafe pointers, and no unexported fields except
// in time.Time (immutable) and the bson package's value types (no
// pointers).
func Clonable(t reflect.Type) bool { return clonableSeen(t, map[reflect.Type]bool{}) }

func clonableSeen(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return false
	case reflect.Array, reflect.Slice, reflect.Pointer:
		return clonableSeen(t.Elem(), seen)
	case reflect.Map:
		return clonableSeen(t.Key(), seen) && clonableSeen(t.Elem(), seen)
	case reflect.Struct:
		if opaque(t) {
			return true
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || !clonableSeen(f.Type, seen) {
				return false
			}
		}
	}
	return true
}

// opaque structs are copied by assignment: time.Time (immutable) and the
// bson package's structs with unexported fields (plain values: Decimal128).
func opaque(t reflect.Type) bool {
	if t == reflect.TypeFor[time.Time]() {
		return true
	}
	if t.PkgPath() != "go.mongodb.org/mongo-driver/v2/bson" {
		return false
	}
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			return true
		}
	}
	return false
}

// cloneOf returns a deep copy of v (see Clonable), compiling its type's
// plan first: tests and one-off copies; a Repo compiles its record's plan
// once (NewCloner).
func cloneOf[T any](v T) T { return NewCloner[T]()(v) }

// NewCloner compiles, once, how to deep-copy values of T (see Clonable):
// a struct is copied by one assignment, then only its fields that hold
// pointers, slices, maps or interfaces are copied deeply (their plans
// compiled too), so that a hit does no reflection over field names.
func NewCloner[T any]() func(T) T {
	c := compileClone(reflect.TypeFor[T](), map[reflect.Type]*cloner{})
	if c.shallow {
		return func(v T) T { return v }
	}
	return func(v T) T {
		src := reflect.ValueOf(&v).Elem()
		out := reflect.New(src.Type()).Elem()
		c.copy(out, src)
		return out.Interface().(T)
	}
}

// cloner copies one type: shallow when an assignment is a deep copy.
type cloner struct {
	shallow bool
	copy    func(dst, src reflect.Value)
}

func compileClone(t reflect.Type, seen map[reflect.Type]*cloner) *cloner {
	if c, ok := seen[t]; ok {
		return c // a recursive type: its plan, filled in below
	}
	c := &cloner{}
	seen[t] = c
	assign := func(dst, src reflect.Value) { dst.Set(src) }
	switch t.Kind() {
	case reflect.Pointer:
		elem := compileClone(t.Elem(), seen)
		c.copy = func(dst, src reflect.Value) {
			if src.IsNil() {
				return
			}
			p := reflect.New(src.Type().Elem())
			elem.copy(p.Elem(), src.Elem()) // a shallow elem's copy is an assignment
			dst.Set(p)
		}
	case reflect.Interface:
		c.copy = func(dst, src reflect.Value) {
			if src.IsNil() {
				return
			}
			e := src.Elem()
			v := reflect.New(e.Type()).Elem()
			cloneInto(v, e)
			dst.Set(v)
		}
	case reflect.Slice:
		elem := compileClone(t.Elem(), seen)
		c.copy = func(dst, src reflect.Value) {
			if src.IsNil() {
				return
			}
			s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
			if elem.shallow {
				reflect.Copy(s, src)
			} else {
				for i := range src.Len() {
					elem.copy(s.Index(i), src.Index(i))
				}
			}
			dst.Set(s)
		}
	case reflect.Map:
		c.copy = func(dst, src reflect.Value) { cloneInto(dst, src) }
	case reflect.Array:
		elem := compileClone(t.Elem(), seen)
		if elem.shallow {
			c.shallow, c.copy = true, assign
			break
		}
		c.copy = func(dst, src reflect.Value) {
			for i := range src.Len() {
				elem.copy(dst.Index(i), src.Index(i))
			}
		}
	case reflect.Struct:
		if opaque(t) {
			c.shallow, c.copy = true, assign
			break
		}
		var deep []int
		var plans []*cloner
		for i := range t.NumField() {
			f := compileClone(t.Field(i).Type, seen)
			if !f.shallow || f.copy == nil {
				deep = append(deep, i)
				plans = append(plans, f)
			}
		}
		if len(deep) == 0 {
			c.shallow, c.copy = true, assign
			break
		}
		c.copy = func(dst, src reflect.Value) {
			dst.Set(src)
			for j, i := range deep {
				if p := plans[j]; !p.shallow {
					p.copy(dst.Field(i), src.Field(i))
				}
			}
		}
	default:
		c.shallow, c.copy = plain(t), assign
	}
	return c
}

// cloneInto sets dst, a settable value of src's type, to a deep copy of src
// (by reflection on the value: interfaces' and maps' contents, whose types
// are known only then).
func cloneInto(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		cloneInto(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Interface:
		if src.IsNil() {
			return
		}
		e := src.Elem()
		c := reflect.New(e.Type()).Elem()
		cloneInto(c, e)
		dst.Set(c)
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		if plain(src.Type().Elem()) {
			reflect.Copy(s, src)
		} else {
			for i := range src.Len() {
				cloneInto(s.Index(i), src.Index(i))
			}
		}
		dst.Set(s)
	case reflect.Array:
		if plain(src.Type().Elem()) {
			dst.Set(src)
			return
		}
		for i := range src.Len() {
			cloneInto(dst.Index(i), src.Index(i))
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		it := src.MapRange()
		for it.Next() {
			k := reflect.New(src.Type().Key()).Elem()
			cloneInto(k, it.Key())
			v := reflect.New(src.Type().Elem()).Elem()
			cloneInto(v, it.Value())
			m.SetMapIndex(k, v)
		}
		dst.Set(m)
	case reflect.Struct:
		if opaque(src.Type()) || !dst.CanSet() {
			dst.Set(src)
			return
		}
		for i := range src.NumField() {
			if !src.Type().Field(i).IsExported() {
				dst.Set(src) // only the opaque types reach here with such fields
				return
			}
		}
		for i := range src.NumField() {
			cloneInto(dst.Field(i), src.Field(i))
		}
	default:
		dst.Set(src)
	}
}

// plain reports a type with nothing to copy deeply: copied by assignment.
func plain(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return true
	case reflect.Array:
		return plain(t.Elem())
	}
	return false
}
