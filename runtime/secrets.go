package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// Redacted replaces a secret wherever the runtime shows a configuration.
const Redacted = "xxxxx"

// RedactURI returns a connection string with its password replaced by
// Redacted: the password of the userinfo (mongodb://user:PASSWORD@host,
// redis://:PASSWORD@host) and the values of query parameters that carry
// one (password, tlsCertificateKeyFilePassword...). It parses loosely, so a
// malformed string is redacted too; the user name and hosts stay, since they
// say which account and server an error is about.
func RedactURI(s string) string {
	out := s
	for _, p := range uriSecrets(s) {
		out = strings.ReplaceAll(out, p, Redacted)
	}
	return out
}

// uriSecrets returns the secrets in a connection string as written, and
// percent-decoded where that differs.
func uriSecrets(s string) []string {
	var out []string
	add := func(v string) {
		if v == "" || v == Redacted {
			return
		}
		out = append(out, v)
		if d, err := url.PathUnescape(v); err == nil && d != v {
			out = append(out, d)
		}
	}
	rest := s
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	query := ""
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rest, query = rest[:q], rest[q+1:]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
			add(rest[colon+1 : at])
		}
	}
	for _, kv := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, _ := strings.Cut(kv, "=")
		if strings.Contains(strings.ToLower(k), "password") || strings.EqualFold(k, "secret") {
			add(v)
		}
	}
	// Longest first, so that a secret containing another is replaced whole.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// secrets returns every secret the configuration holds.
func (c Config) secrets() []string {
	out := uriSecrets(c.MongoURI)
	out = append(out, uriSecrets(c.RedisURL)...)
	if c.RedisPassword != "" {
		out = append(out, c.RedisPassword)
	}
	return out
}

// redacted is c with every secret replaced by Redacted.
func (c Config) redacted() Config {
	c.MongoURI = RedactURI(c.MongoURI)
	c.RedisURL = RedactURI(c.RedisURL)
	if c.RedisPassword != "" {
		c.RedisPassword = Redacted
	}
	return c
}

// String shows the configuration with its secrets redacted, so that
// printing a Config (%v, %+v, %s) never shows a password.
func (c Config) String() string {
	type plain Config // no methods: no recursion
	return fmt.Sprintf("%+v", plain(c.redacted()))
}

// GoString is String for %#v.
func (c Config) GoString() string { return "runtime.Config" + c.String() }

// LogValue logs the configuration with its secrets redacted.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// scrubber replaces known secrets in error texts.
type scrubber []string

// scrub returns err, or an error of the same chain whose text has every
// secret replaced by Redacted.
func (s scrubber) scrub(err error) error {
	if err == nil || len(s) == 0 {
		return err
	}
	msg := err.Error()
	clean := msg
	for _, p := range s {
		clean = strings.ReplaceAll(clean, p, Redacted)
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{err: err, msg: clean}
}

// scrubbedError is an error whose text has been redacted; errors.Is and
// errors.As still see what it wraps.
type scrubbedError struct {
	err error
	msg string
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubOp redacts an *OpError's cause in place of the error itself, so that
// callers still get an *OpError.
func (s scrubber) scrubOp(err error) error {
	var op *OpError
	if err == nil || len(s) == 0 || !errors.As(err, &op) || op != err {
		return s.scrub(err)
	}
	cp := *op
	cp.Err = s.scrub(op.Err)
	cp.Key = s.scrubString(op.Key)
	return &cp
}

func (s scrubber) scrubString(v string) string {
	for _, p := range s {
		v = strings.ReplaceAll(v, p, Redacted)
	}
	return v
}
