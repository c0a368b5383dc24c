package repo

// The directive lives in the file go generate scans last: persistgen deletes
// generated files the manifest no longer produces, and go generate would fail
// on a deleted file it had yet to scan.

//go:generate go tool persistgen generate -manifest ../domains.yaml -out .
