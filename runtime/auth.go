package runtime

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// MongoDB's code for a refused login (codeUnauthorized, 13, is a missing
// privilege).
const codeAuthenticationFailed = 18

// mongoAuthCode returns 18 when MongoDB refused the credentials, 13 when the
// user lacks a privilege, and 0 for any other error: only the server's code
// decides, never a message (a connection dropped during the login reads
// "auth error: ... EOF", and is an outage).
func mongoAuthCode(err error) int {
	if err == nil {
		return 0
	}
	var se mongo.ServerError
	if errors.As(err, &se) {
		switch {
		case se.HasErrorCode(codeAuthenticationFailed):
			return codeAuthenticationFailed
		case se.HasErrorCode(codeUnauthorized):
			return codeUnauthorized
		}
	}
	return 0 // a network error during the login is an outage, not a refusal
}

// mongoAuthError explains a refusal by MongoDB (see mongoAuthCode).
func (c *Conn) mongoAuthError(err error) error {
	user := c.mongoUser
	if user == "" {
		user = "(none given)"
	}
	if mongoAuthCode(err) == codeUnauthorized && c.mongoUser == "" {
		return &causeError{kind: ErrUnauthorized, cause: fmt.Errorf(
			"mongodb at %s requires a login and none was given (%w); put a user and password in CC_MONGO_CONNECTION_STRING (mongodb://USER:PASSWORD@host/database?authSource=admin) or use CC_MONGO_PASSWORD_FILE",
			c.mongoAddr, err)}
	}
	if mongoAuthCode(err) == codeUnauthorized {
		return &causeError{kind: ErrUnauthorized, cause: fmt.Errorf(
			"mongodb at %s: user %q lacks a privilege the runtime needs (%w); grant the actions docs/security.md lists under \"Least privilege\", or give the user in CC_MONGO_CONNECTION_STRING",
			c.mongoAddr, user, err)}
	}
	return &causeError{kind: ErrUnauthorized, cause: fmt.Errorf(
		"mongodb at %s refused the credentials of user %q (%w); check the user, password and authSource in CC_MONGO_CONNECTION_STRING (the password is never shown)",
		c.mongoAddr, user, err)}
}

// redisAuthKind returns "credentials" for a refused AUTH (WRONGPASS,
// NOAUTH), "permission" for a command the user's ACL denies (NOPERM), and
// "" for any other error.
func redisAuthKind(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOAUTH"),
		strings.Contains(msg, "invalid password"), strings.Contains(msg, "invalid username-password"),
		strings.Contains(msg, "without any password configured"):
		return "credentials"
	case strings.HasPrefix(msg, "NOPERM"):
		return "permission"
	}
	return ""
}

// redisAuthError explains a refusal by Redis (see redisAuthKind).
func (c *Conn) redisAuthError(err error) error {
	user := c.redisUser
	if user == "" {
		user = "default"
	}
	if redisAuthKind(err) == "permission" {
		return &causeError{kind: ErrUnauthorized, cause: fmt.Errorf(
			"redis at %s: user %q may not run a command the runtime needs (%w); grant the ACL `persistgen acl` prints",
			c.redisAddr, user, err)}
	}
	return &causeError{kind: ErrUnauthorized, cause: fmt.Errorf(
		"redis at %s refused the credentials of user %q (%w); check CC_REDIS_USER and CC_REDIS_PASSWORD (the password is never shown)",
		c.redisAddr, user, err)}
}

// tlsTrustError reports a TLS handshake that failed on the certificate:
// not signed by a trusted CA, expired, or for another host. Waiting does not
// fix it.
func tlsTrustError(err error) bool {
	if err == nil {
		return false
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &cv) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "x509: ") || strings.Contains(msg, "tls: failed to verify certificate")
}

// tlsToPlain reports a TLS handshake answered by a server that does not
// speak TLS on that port.
func tlsToPlain(err error) bool {
	var rh tls.RecordHeaderError
	return err != nil && (errors.As(err, &rh) || strings.Contains(err.Error(), "first record does not look like a TLS handshake"))
}
