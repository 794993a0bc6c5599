package eventlog

import (
	"fmt"
	"strings"

	"github.com/eventpipe/eventpipe/internal/scope"
)

// SubjectPrefix is the first token of every event subject.
const SubjectPrefix = "events"

// A subject is events.<scopeType>.<scopeName>.<namespace>.<name>. Each token is
// encoded with EncodeToken because Kubernetes names contain dots and NATS uses
// dots to separate tokens; the encoding is reversible so a consumer can read
// the event's coordinates back from the subject alone.

// emptyToken stands for an empty value (the Platform scope's name, the
// namespace of a cluster-scoped event): NATS tokens cannot be empty.
const emptyToken = "_"

// EncodeToken makes s safe as one NATS subject token. Letters, digits and '-'
// stay as they are; every other byte becomes ~XX (upper-case hex). The empty
// string becomes "_". The result never contains '.', '*', '>' or white space.
func EncodeToken(s string) string {
	if s == "" {
		return emptyToken
	}
	if isPlainToken(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isPlainByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('~')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

const hexDigits = "0123456789ABCDEF"

func isPlainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

func isPlainToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isPlainByte(s[i]) {
			return false
		}
	}
	return true
}

// DecodeToken reverses EncodeToken.
func DecodeToken(t string) (string, error) {
	if t == emptyToken {
		return "", nil
	}
	if t == "" {
		return "", fmt.Errorf("decode subject token: empty token")
	}
	if isPlainToken(t) {
		return t, nil
	}
	out := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case isPlainByte(c):
			out = append(out, c)
		case c == '~':
			if i+2 >= len(t) {
				return "", fmt.Errorf("decode subject token %q: truncated escape at byte %d", t, i)
			}
			hi, ok1 := unhex(t[i+1])
			lo, ok2 := unhex(t[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("decode subject token %q: bad escape at byte %d", t, i)
			}
			v := hi<<4 | lo
			if isPlainByte(v) {
				// EncodeToken never escapes a plain byte; accepting one would
				// give a second spelling of the same value.
				return "", fmt.Errorf("decode subject token %q: needless escape at byte %d", t, i)
			}
			out = append(out, v)
			i += 2
		default:
			return "", fmt.Errorf("decode subject token %q: byte %q is not allowed", t, c)
		}
	}
	return string(out), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Key locates one event: its owner, namespace (empty for cluster-scoped
// objects such as Nodes) and name.
type Key struct {
	Scope     scope.Scope
	Namespace string
	Name      string
}

// Subject is the subject every state of the event at k is published on.
func Subject(k Key) string {
	return SubjectPrefix + "." + EncodeToken(k.Scope.Type) + "." + EncodeToken(k.Scope.Name) + "." +
		EncodeToken(k.Namespace) + "." + EncodeToken(k.Name)
}

// FilterSubject returns the subject filter that matches every event of sc, or,
// when namespace is not nil, every event of sc in *namespace. A nil sc matches
// every scope (platform-wide readers only).
func FilterSubject(sc *scope.Scope, namespace *string) string {
	parts := []string{SubjectPrefix, "*", "*", "*", "*"}
	if sc != nil {
		parts[1], parts[2] = EncodeToken(sc.Type), EncodeToken(sc.Name)
	}
	if namespace != nil {
		parts[3] = EncodeToken(*namespace)
	}
	return strings.Join(parts, ".")
}

// ParseSubject reads the key back from a subject made by Subject.
func ParseSubject(subj string) (Key, error) {
	toks := strings.Split(subj, ".")
	if len(toks) != 5 || toks[0] != SubjectPrefix {
		return Key{}, fmt.Errorf("parse subject %q: want %s.<scopeType>.<scopeName>.<namespace>.<name>", subj, SubjectPrefix)
	}
	var vals [4]string
	for i := range vals {
		v, err := DecodeToken(toks[i+1])
		if err != nil {
			return Key{}, fmt.Errorf("parse subject %q: %w", subj, err)
		}
		vals[i] = v
	}
	k := Key{Scope: scope.Scope{Type: vals[0], Name: vals[1]}, Namespace: vals[2], Name: vals[3]}
	if err := k.Scope.Validate(); err != nil {
		return Key{}, fmt.Errorf("parse subject %q: %w", subj, err)
	}
	if k.Name == "" {
		return Key{}, fmt.Errorf("parse subject %q: empty event name", subj)
	}
	return k, nil
}

// SubjectMatches reports whether subject matches filter as NATS matches
// them: the same number of dot-separated tokens, each equal or "*" in the
// filter, or a final ">" matching the rest. Readers that filter states
// themselves (the shared watch tail) use it with FilterSubject's filters.
func SubjectMatches(filter, subject string) bool {
	for {
		ft, frest, fmore := strings.Cut(filter, ".")
		if ft == ">" {
			return subject != ""
		}
		st, srest, smore := strings.Cut(subject, ".")
		if ft != "*" && ft != st {
			return false
		}
		if fmore != smore {
			return false
		}
		if !fmore {
			return true
		}
		filter, subject = frest, srest
	}
}
