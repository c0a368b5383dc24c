package runtime

import (
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// The forms in which the servers report a racing writer, as they were seen
// (FerretDB v2 + DocumentDB, FerretDB v1, MongoDB), and errors that are not
// races and must never be retried as one.
func TestRaceClassification(t *testing.T) {
	cases := []struct {
		name string
		code int32
		msg  string
		want race
	}{
		{"MongoDB duplicate key", 11000, "E11000 duplicate key error collection: db.c index: k_1 dup key: { k: 1 }", raceDuplicate},
		{"old duplicate key code", 11001, "E11001 duplicate key on update", raceDuplicate},
		{"DocumentDB duplicate key", 11000, "Duplicate key violation on the requested collection: Index 'k_1'", raceDuplicate},
		{"DocumentDB racing upsert (exclusion)", 1, `conflicting key value violates exclusion constraint "documents_rum_index_7"`, raceDuplicate},
		{"DocumentDB racing upsert (deadlock)", 1, "deadlock detected", raceTransient},
		{"DocumentDB bulk deadlock (SQLSTATE 40P01)", 16908292, "deadlock detected", raceTransient},
		{"serialization failure (SQLSTATE 40001)", 16777220, "could not serialize access due to concurrent update", raceTransient},
		{"FerretDB v1 update onto another key", 1, `[msg_update.go:133 handler.(*Handler).updateDocument] ERROR: duplicate key value violates unique constraint "u_f00c3c10_k___b473697a_idx" (SQLSTATE 23505)`, raceDuplicate},
		{"other internal error", 1, "ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)", noRace},
		{"bad value", 2, "nested arrays are not supported", noRace},
		{"type mismatch", 14, "Cannot apply $inc to a value of non-numeric type", noRace},
		{"deadlock words under another code", 14, "deadlock detected", noRace},
	}
	for _, c := range cases {
		if got := raceOf(c.code, c.msg); got != c.want {
			t.Errorf("%s: raceOf(%d, %q) = %v, want %v", c.name, c.code, c.msg, got, c.want)
		}
	}
	if pgState("40P01") != 16908292 || pgState("23505") != pgUniqueViolation {
		t.Fatalf("pgState(40P01) = %d, want DocumentDB's 16908292", pgState("40P01"))
	}
}

// lostRace reads both error shapes of a single write: a command error
// (findAndModify) and a write exception (update, insert).
func TestLostRaceReadsCommandErrorsAndWriteExceptions(t *testing.T) {
	cmd := mongo.CommandError{Code: 1, Message: "deadlock detected", Name: "InternalError"}
	if lostRace(cmd) != raceTransient {
		t.Error("a findAndModify deadlock is not retried")
	}
	we := mongo.WriteException{WriteErrors: mongo.WriteErrors{{Code: 11000, Message: "E11000"}}}
	if lostRace(we) != raceDuplicate {
		t.Error("an update's duplicate key is not retried")
	}
	withConcern := mongo.WriteException{WriteErrors: mongo.WriteErrors{{Code: 11000}}, WriteConcernError: &mongo.WriteConcernError{Code: 64}}
	if lostRace(withConcern) != noRace {
		t.Error("a write concern error is retried as a race")
	}
	if lostRace(errors.New("connection reset")) != noRace {
		t.Error("a network error is retried as a race")
	}
}

// A write concern error means the write was applied and its durability is
// unknown: never a refusal (a batch item would be reported not stored).
func TestAWriteConcernErrorIsNotARefusal(t *testing.T) {
	wce := mongo.WriteException{WriteConcernError: &mongo.WriteConcernError{Code: 64, Message: "waiting for replication timed out"}}
	if isRefusal(wce) {
		t.Fatal("a write concern error counts as a refusal")
	}
	bulk := mongo.BulkWriteException{WriteConcernError: &mongo.WriteConcernError{Code: 64}}
	if isRefusal(bulk) {
		t.Fatal("a bulk write's write concern error counts as a refusal")
	}
	refused := mongo.WriteException{WriteErrors: mongo.WriteErrors{{Code: 28, Message: "Cannot create field"}}}
	if !isRefusal(refused) {
		t.Fatal("a write error does not count as a refusal")
	}
}

func TestRaceOfCodes(t *testing.T) {
	for _, tc := range []struct {
		code int32
		msg  string
		want race
	}{
		{12582, "", raceDuplicate},
		{pgUniqueViolation, "", raceDuplicate},
		{pgExclusionViolation, "", raceDuplicate},
		{pgSerialization, "", raceTransient},
		{1, "ERROR: could not serialize access due to read/write dependencies", raceTransient},
		{0, "duplicate key value violates unique constraint", noRace},
		{11002, "", noRace},
	} {
		if got := raceOf(tc.code, tc.msg); got != tc.want {
			t.Errorf("raceOf(%d, %q) = %v, want %v", tc.code, tc.msg, got, tc.want)
		}
	}
	if pgState("23P01") != pgExclusionViolation || pgState("40001") != 16777220 || pgState("00000") != 0 {
		t.Fatalf("pgState")
	}
}
