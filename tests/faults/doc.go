// Package faults holds the linearizability test under injected faults. It
// is a module of its own so that its test-only server (an in-process
// toxiproxy) and its dependencies stay out of the root go.mod.
package faults
