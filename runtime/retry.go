package runtime

import (
	"errors"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// race is how a server said that another writer touched the same key at the
// same moment.
type race int

const (
	noRace race = iota
	// raceDuplicate: the key exists (another writer created it first). An
	// upsert retries and then matches it; an insert has lost to it.
	raceDuplicate
	// raceTransient: the write was aborted by a conflict (a deadlock, a
	// serialization failure) and changed nothing; it is retried as it is.
	raceTransient
)

// pgState is PostgreSQL's integer encoding of a SQLSTATE (MAKE_SQLSTATE),
// which DocumentDB reports as the code of a bulk write error it does not
// map to a MongoDB code.
func pgState(s string) int32 {
	var n int32
	for i := 0; i < 5; i++ {
		n += int32((s[i]-'0')&0x3f) << (6 * i)
	}
	return n
}

var (
	pgUniqueViolation    = pgState("23505")
	pgExclusionViolation = pgState("23P01")
	pgDeadlock           = pgState("40P01")
	pgSerialization      = pgState("40001")
)

// raceOf classifies one server error code and message. The forms:
//   - MongoDB, FerretDB, DocumentDB: E11000 (and its old variants 11001,
//     12582);
//   - DocumentDB's findAndModify under racing upserts: InternalError (1)
//     "conflicting key value violates exclusion constraint ..." or
//     "deadlock detected"; in bulk writes the PostgreSQL SQLSTATE itself
//     (40P01 deadlock, 23P01 exclusion, 23505 unique);
//   - FerretDB v1: InternalError (1) carrying PostgreSQL's "duplicate key
//     value violates unique constraint" for an update that hits another
//     document's key.
//
// Codes 1 are matched by PostgreSQL's message text because nothing else
// tells them apart from other internal errors.
func raceOf(code int32, msg string) race {
	switch code {
	case 11000, 11001, 12582, pgUniqueViolation, pgExclusionViolation:
		return raceDuplicate
	case pgDeadlock, pgSerialization:
		return raceTransient
	case codeInternalError:
		switch {
		case strings.Contains(msg, "duplicate key value violates unique constraint"),
			strings.Contains(msg, "conflicting key value violates exclusion constraint"):
			return raceDuplicate
		case strings.Contains(msg, "deadlock detected"),
			strings.Contains(msg, "could not serialize access"):
			return raceTransient
		}
	}
	return noRace
}

// lostRace classifies the error of a single write (a command error or a
// write exception); it is noRace for everything else, network errors
// included.
func lostRace(err error) race {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return raceOf(ce.Code, ce.Message)
	}
	var we mongo.WriteException
	if errors.As(err, &we) && we.WriteConcernError == nil && len(we.WriteErrors) == 1 {
		return raceOf(int32(we.WriteErrors[0].Code), we.WriteErrors[0].Message)
	}
	return noRace
}
