package gen

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("manifest.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("manifest.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func yamlAsJSON(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return yamlText(t, string(data))
}

// yamlText is a manifest's text as JSON values, for the JSON Schema.
func yamlText(t *testing.T, data string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(data), &v); err != nil {
		t.Fatal(err)
	}
	// Round-trip through encoding/json so numbers and maps have JSON types.
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// domains.yaml and every valid scenario's manifest satisfy the JSON Schema that
// editors use.
func TestManifestsMatchJSONSchema(t *testing.T) {
	s := compileSchema(t)
	paths, _ := filepath.Glob("testdata/scenarios/*/want")
	for i, p := range paths {
		paths[i] = filepath.Join(filepath.Dir(p), "domains.yaml")
	}
	paths = append(paths, "../domains.yaml")
	for _, p := range paths {
		if err := s.Validate(yamlAsJSON(t, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// The schema is not vacuous: manifests with structural errors fail it.
func TestJSONSchemaRejectsStructuralErrors(t *testing.T) {
	s := compileSchema(t)
	for _, p := range []string{"testdata/scenarios/invalid-many/domains.yaml", "testdata/scenarios/invalid-no_version/domains.yaml", "testdata/scenarios/invalid-history/domains.yaml"} {
		if err := s.Validate(yamlAsJSON(t, p)); err == nil {
			t.Errorf("%s passed the JSON Schema", p)
		}
	}
}
