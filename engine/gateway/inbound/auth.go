package inbound

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/emersion/go-sasl"
	"golang.org/x/crypto/bcrypt"
)

// secrets are the AUTH credentials by user name.
type secrets struct {
	users map[string]secret
	// dummy is checked for an unknown user, so that a wrong name costs
	// what a wrong secret does: bcrypt if the file has bcrypt hashes.
	dummy secret
}

// secret is one user's hash: a SHA-256 digest or a bcrypt hash.
type secret struct {
	sha    []byte
	bcrypt []byte
}

// loadSecrets reads an auth_secrets file; every entry must be a hash we can
// check, so a typo is found at startup and not at the first login.
func loadSecrets(path string) (secrets, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return secrets{}, fmt.Errorf("auth secrets: %w", err)
	}
	var raw map[string]string
	if err := json.Unmarshal(data, &raw); err != nil {
		return secrets{}, fmt.Errorf("auth secrets %s: want a JSON object of user names to hashes: %w", path, err)
	}
	s := secrets{users: make(map[string]secret, len(raw)), dummy: secret{sha: make([]byte, sha256.Size)}}
	var errs []error
	for user, hash := range raw {
		sec, err := parseSecret(hash)
		if err != nil {
			errs = append(errs, fmt.Errorf("auth secrets %s: user %q: %w", path, user, err))
			continue
		}
		if user == "" {
			errs = append(errs, fmt.Errorf("auth secrets %s: an empty user name", path))
			continue
		}
		if sec.bcrypt != nil && s.dummy.bcrypt == nil {
			// A hash of a random secret at the same cost.
			cost, _ := bcrypt.Cost(sec.bcrypt)
			d, err := bcrypt.GenerateFromPassword([]byte(randomID()), cost)
			if err != nil {
				return secrets{}, fmt.Errorf("auth secrets: %w", err)
			}
			s.dummy = secret{bcrypt: d}
		}
		s.users[user] = sec
	}
	if err := errors.Join(errs...); err != nil {
		return secrets{}, err
	}
	return s, nil
}

func parseSecret(hash string) (secret, error) {
	for _, p := range []string{"$2a$", "$2b$", "$2y$"} {
		if strings.HasPrefix(hash, p) {
			if _, err := bcrypt.Cost([]byte(hash)); err != nil {
				return secret{}, fmt.Errorf("not a bcrypt hash: %w", err)
			}
			return secret{bcrypt: []byte(hash)}, nil
		}
	}
	sum, err := hex.DecodeString(hash)
	if err != nil || len(sum) != sha256.Size {
		return secret{}, errors.New(`want the hex SHA-256 of the secret, or a bcrypt hash ("$2a$", "$2b$", "$2y$")`)
	}
	return secret{sha: sum}, nil
}

// check reports whether password is user's secret, in time that depends
// on neither the password nor (within a hash kind) whether the user exists.
func (s secrets) check(user, password string) bool {
	sec, ok := s.users[user]
	if !ok {
		sec = s.dummy
	}
	var match bool
	if sec.bcrypt != nil {
		match = bcrypt.CompareHashAndPassword(sec.bcrypt, []byte(password)) == nil
	} else {
		sum := sha256.Sum256([]byte(password))
		match = subtle.ConstantTimeCompare(sum[:], sec.sha) == 1
	}
	return ok && match
}

// The SASL servers below are ours rather than go-sasl's (which has no
// LOGIN server) so that every failure is an *smtp.SMTPError made by the
// session's one reply function: go-smtp writes the text of any other error
// to the client.

// authenticate is called with the credentials a mechanism collected; it
// returns nil or the reply to send.
type authenticate func(identity, user, password string) error

// plainServer is RFC 4616 PLAIN: authzid NUL authcid NUL passwd.
type plainServer struct {
	auth    authenticate
	started bool
}

func (p *plainServer) Next(response []byte) ([]byte, bool, error) {
	if response == nil && !p.started {
		// No initial response: ask for it with an empty challenge.
		p.started = true
		return []byte{}, false, nil
	}
	parts := bytes.Split(response, []byte{0})
	if len(parts) != 3 {
		// Malformed: fail as a wrong secret does (no user is named "").
		return nil, true, p.auth("", "", "")
	}
	return nil, true, p.auth(string(parts[0]), string(parts[1]), string(parts[2]))
}

// loginServer is the LOGIN mechanism (draft-murchison-sasl-login): the
// user name, then the password, each asked for.
type loginServer struct {
	auth authenticate
	step int
	user string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		// An initial response is the user name.
		fallthrough
	case 1:
		l.step, l.user = 2, string(response)
		return []byte("Password:"), false, nil
	}
	return nil, true, l.auth("", l.user, string(response))
}

var (
	_ sasl.Server = (*plainServer)(nil)
	_ sasl.Server = (*loginServer)(nil)
)
