package webhook

import (
	"bytes"
	"encoding/json"
)

// readProbe fills pr from raw as json.Unmarshal(raw, &pr) would, in one
// pass and without reflection: the probe runs on every item of every body,
// and through encoding/json it cost about as much as decoding the event
// itself. It handles the plain case only: raw is a valid JSON object whose
// apiVersion, kind and type are absent or plain strings (no escapes), whose
// items is absent, null or an array, and whose other keys do not match the
// probe's fields case-insensitively without matching exactly. For anything
// else it returns false and the caller uses encoding/json, which then
// decides, and words the error, exactly as before. FuzzReadProbe holds it
// to encoding/json's answer.
func readProbe(raw []byte, pr *probe) bool {
	s := scanner{b: raw}
	s.space()
	if !s.byte('{') {
		return false
	}
	*pr = probe{}
	s.space()
	if s.byte('}') {
		return s.end()
	}
	for {
		s.space()
		key, plain := s.str()
		if !plain {
			return false
		}
		s.space()
		if !s.byte(':') {
			return false
		}
		s.space()
		start := s.i
		switch string(key) {
		case "apiVersion", "kind", "type":
			v, ok := s.str()
			if !ok {
				return false
			}
			switch string(key) {
			case "apiVersion":
				pr.APIVersion = string(v)
			case "kind":
				pr.Kind = string(v)
			default:
				pr.Type = string(v)
			}
		case "object":
			if !s.value(0) {
				return false
			}
			pr.Object = json.RawMessage(bytes.Clone(raw[start:s.i]))
		case "items":
			items, ok := s.elements()
			if !ok {
				return false
			}
			pr.Items = items
		default:
			if foldsToProbeField(key) || !s.value(0) {
				return false
			}
		}
		s.space()
		if s.byte(',') {
			continue
		}
		if s.byte('}') {
			return s.end()
		}
		return false
	}
}

// foldsToProbeField reports whether encoding/json would fill one of the
// probe's fields from key although it is not spelt exactly so: it matches
// field names case-insensitively.
func foldsToProbeField(key []byte) bool {
	for _, f := range [...]string{"apiVersion", "kind", "items", "type", "object"} {
		if bytes.EqualFold(key, []byte(f)) {
			return true
		}
	}
	return false
}

// maxProbeDepth keeps the scanner well inside encoding/json's own nesting
// limit (10,000); deeper input goes to encoding/json.
const maxProbeDepth = 1000

// scanner walks JSON text. Its methods advance i past what they accept and
// report false on anything they do not.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end accepts trailing white space only.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// str reads a string of printable ASCII without escapes and returns its
// content; anything else is refused and the caller falls back
// (encoding/json unescapes, replaces invalid UTF-8 and folds Unicode case
// in keys, none of which the probe's plain case needs).
func (s *scanner) str() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// skipString reads any valid string, escapes included.
func (s *scanner) skipString() bool {
	if !s.byte('"') {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.i >= len(s.b) {
				return false
			}
			e := s.b[s.i]
			s.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.i+4 > len(s.b) {
					return false
				}
				for _, h := range s.b[s.i : s.i+4] {
					if !isHex(h) {
						return false
					}
				}
				s.i += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number reads a JSON number: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
func (s *scanner) number() bool {
	s.byte('-')
	switch {
	case s.byte('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.byte('.') && !s.digits() {
		return false
	}
	if s.byte('e') || s.byte('E') {
		if !s.byte('+') {
			s.byte('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && isDigit(s.b[s.i]) {
		s.i++
	}
	return s.i > start
}

func (s *scanner) literal(word string) bool {
	if bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		s.i += len(word)
		return true
	}
	return false
}

// value reads any valid JSON value at nesting depth.
func (s *scanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxProbeDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.skipString()
	case c == '{' || c == '[':
		return s.container(depth)
	case c == '-' || isDigit(c):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

// container reads an object or an array, whose opening bracket is at i.
func (s *scanner) container(depth int) bool {
	object := s.b[s.i] == '{'
	closing := byte(']')
	if object {
		closing = '}'
	}
	s.i++
	s.space()
	if s.byte(closing) {
		return true
	}
	for {
		s.space()
		if object {
			if !s.skipString() {
				return false
			}
			s.space()
			if !s.byte(':') {
				return false
			}
			s.space()
		}
		if !s.value(depth + 1) {
			return false
		}
		s.space()
		if s.byte(',') {
			continue
		}
		return s.byte(closing)
	}
}

// elements reads the items value: null (no items, as encoding/json leaves
// a nil slice) or an array, returning a copy of each element's text.
func (s *scanner) elements() ([]json.RawMessage, bool) {
	if s.literal("null") {
		return nil, true
	}
	if !s.byte('[') {
		return nil, false
	}
	out := []json.RawMessage{}
	s.space()
	if s.byte(']') {
		return out, true
	}
	for {
		s.space()
		start := s.i
		if !s.value(1) {
			return nil, false
		}
		out = append(out, json.RawMessage(bytes.Clone(s.b[start:s.i])))
		s.space()
		if s.byte(',') {
			continue
		}
		if s.byte(']') {
			return out, true
		}
		return nil, false
	}
}
