package runtime

import "testing"

// Missing names exactly what a server lacks of what a caller wants.
func TestCapabilitiesMissing(t *testing.T) {
	v1 := Capabilities{MaxBulk: 10}
	if got := v1.Missing(Capabilities{NestedArrays: true, BulkResults: true}); got != "nested arrays, exact bulk results" {
		t.Errorf("Missing = %q", got)
	}
	if got := v1.Missing(Capabilities{MaxBulk: 500}); got != "bulk writes of 500 (server: 10)" {
		t.Errorf("Missing = %q", got)
	}
	if got := AllCapabilities().Missing(Capabilities{NestedArrays: true, Infinity: true, FindAndModifyProjection: true, BulkResults: true, MaxBulk: 1000}); got != "" {
		t.Errorf("MongoDB's capabilities lack %q", got)
	}
	if got := v1.Missing(Capabilities{}); got != "" {
		t.Errorf("nothing wanted, %q missing", got)
	}
}
