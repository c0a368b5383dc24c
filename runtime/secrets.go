package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// redacted replaces a secret wherever the runtime shows a configuration.
const redacted = "xxxxx"

// RedactURI returns a connection string with its password replaced by
// redacted, by position: the password of the userinfo (everything between
// the first ':' after the scheme and the last '@', as the drivers read it,
// also when it holds an unescaped '?', '/' or '#'), and the values of query
// options that carry one (password, tlsCertificateKeyFilePassword,
// authMechanismProperties...). Nothing else changes: the user name and
// hosts stay, to say which account and server a message is about. A string
// that is not a connection string at all is returned whole when it holds no
// '@' and no password option, else redacted.
func RedactURI(s string) string {
	u, ok := splitURI(s)
	if !ok {
		if strings.Contains(s, "@") || len(u.values) > 0 {
			return redacted
		}
		return s
	}
	out := u.head
	if u.password != "" {
		out += redacted
	}
	out += u.tail
	for k := len(u.spans) - 1; k >= 0; k-- { // from the end: earlier spans stay valid
		out = out[:u.spans[k].start] + redacted + out[u.spans[k].end:]
	}
	return out
}

// uri is a connection string cut where its secrets are: head (scheme, and
// "user:" when there is a password), password, tail (from the last '@'),
// and the secret options' values with their spans in head+redacted+tail.
type uri struct {
	head, password, tail string
	values               []string
	spans                []span
}

type span struct{ start, end int }

// splitURI cuts s; ok is false when s has no "://" (options are still
// found).
func splitURI(s string) (u uri, ok bool) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		u.values, u.spans = secretOptions(s, 0)
		return u, false
	}
	u.head = scheme + "://"
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		userinfo := rest[:at]
		if colon := strings.IndexByte(userinfo, ':'); colon >= 0 {
			u.head += userinfo[:colon+1]
			u.password = userinfo[colon+1:]
		} else {
			u.head += userinfo
		}
		rest = rest[at:]
	}
	u.tail = rest
	base := len(u.head)
	if u.password != "" {
		base += len(redacted)
	}
	u.values, u.spans = secretOptions(u.tail, base)
	return u, true
}

// secretOptions returns the values of the secret options after s's '?',
// and their spans (offset by base).
func secretOptions(s string, base int) (values []string, spans []span) {
	q := strings.IndexByte(s, '?')
	if q < 0 {
		return nil, nil
	}
	start := q + 1
	for i := start; i <= len(s); i++ {
		if i < len(s) && s[i] != '&' && s[i] != ';' {
			continue
		}
		if k, v, hasValue := strings.Cut(s[start:i], "="); hasValue && secretOption(k) {
			values = append(values, v)
			vs := start + len(k) + 1
			spans = append(spans, span{base + vs, base + i})
		}
		start = i + 1
	}
	return values, spans
}

// secretOption reports an option whose value is a secret.
func secretOption(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "password") || strings.Contains(n, "secret") || strings.Contains(n, "token") ||
		n == "authmechanismproperties" || n == "pass"
}

// uriSecrets returns the secrets of a connection string, as written and
// percent-decoded: what a driver's error text could echo.
func uriSecrets(s string) []string {
	u, ok := splitURI(s)
	if !ok {
		return nil
	}
	var out []string
	for _, v := range append([]string{u.password}, u.values...) {
		if v == "" || v == redacted {
			continue
		}
		out = append(out, v)
		if d, err := url.PathUnescape(v); err == nil && d != v {
			out = append(out, d)
		}
		if d, err := url.QueryUnescape(v); err == nil && d != v {
			out = append(out, d)
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

// redacted is c with every secret replaced by redacted (a password file's
// path too: it is not secret, but an operator may put the password there by
// mistake).
func (c Config) redacted() Config {
	c.MongoURI = RedactURI(c.MongoURI)
	c.RedisURL = RedactURI(c.RedisURL)
	for _, p := range []*string{&c.RedisPassword, &c.MongoPasswordFile, &c.RedisPasswordFile} {
		if *p != "" {
			*p = redacted
		}
	}
	return c
}

// String shows the configuration with its secrets redacted, so that
// printing a Config never shows a password.
func (c Config) String() string {
	type plain Config // no methods: no recursion
	return fmt.Sprintf("%+v", plain(c.redacted()))
}

// GoString is String for %#v.
func (c Config) GoString() string { return "runtime.Config" + c.String() }

// Format prints String for every verb (%d or %x included), so that no verb
// reaches a raw field.
func (c Config) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(c.GoString()))
		return
	}
	_, _ = f.Write([]byte(c.String()))
}

// LogValue logs the configuration with its secrets redacted.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// String describes the Conn by its servers and database, without secrets.
func (c *Conn) String() string {
	if c == nil {
		return "runtime.Conn(nil)"
	}
	user := c.mongoUser
	if user == "" {
		user = "(none)"
	}
	return fmt.Sprintf("runtime.Conn{mongodb %s user %s database %s, redis %s}", c.mongoAddr, user, c.db.Name(), c.redisAddr)
}

// GoString is String for %#v.
func (c *Conn) GoString() string { return c.String() }

// Format prints String for every verb.
func (c *Conn) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue logs the Conn as String.
func (c *Conn) LogValue() slog.Value { return slog.StringValue(c.String()) }

// scrubber holds the passwords a Conn was given: a safety net that removes
// them from the text of errors and log records the drivers produce (the
// runtime's own messages are built from redacted strings). Only secrets of
// six characters or more are scrubbed, so that a short common word in a
// message is never mangled (or turned into an oracle for guessing).
type scrubber []string

const minScrubbed = 6

// String never shows the secrets.
func (s scrubber) String() string { return fmt.Sprintf("[%d secrets]", len(s)) }

// Format prints String for every verb.
func (s scrubber) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

func (s scrubber) scrubString(v string) string {
	for _, p := range s {
		if len(p) >= minScrubbed {
			v = strings.ReplaceAll(v, p, redacted)
		}
	}
	return v
}

// scrub returns err, or an error of the same chain whose text has every
// secret replaced by redacted.
func (s scrubber) scrub(err error) error {
	if err == nil || len(s) == 0 {
		return err
	}
	msg := err.Error()
	if clean := s.scrubString(msg); clean != msg {
		return &scrubbedError{err: err, msg: clean}
	}
	return err
}

// scrubbedError is an error whose text has been redacted; errors.Is and
// errors.As still see what it wraps.
type scrubbedError struct {
	err error
	msg string
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrubOp redacts an *OpError's cause, keeping the *OpError and its key
// (keys are the caller's own data, never scrubbed: that would let anyone
// who chooses keys test guesses of a password).
func (s scrubber) scrubOp(err error) error {
	var op *OpError
	if err == nil || len(s) == 0 || !errors.As(err, &op) || op != err {
		return s.scrub(err)
	}
	cp := *op
	cp.Err = s.scrub(op.Err)
	return &cp
}
