package gen

import _ "embed"

//go:embed manifest.schema.json
var schemaJSON []byte

// JSONSchema returns the JSON Schema of the manifest, for editors (point the
// YAML language server at gen/manifest.schema.json).
func JSONSchema() []byte { return append([]byte(nil), schemaJSON...) }
