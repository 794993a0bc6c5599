package activity

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Part is one piece of a summary template: literal text, or a CEL
// expression whose value is printed.
type Part struct {
	// Text is the literal text; empty for an expression part.
	Text string
	// Expr is the CEL source between {{ and }}, trimmed; empty for text.
	Expr string
	// Offset is the byte offset of Expr (or Text) in the template, so that
	// errors inside the expression can point at the template's column.
	Offset int
}

// TemplateError is a template that does not parse. Offset is a byte offset
// into the template.
type TemplateError struct {
	Offset int
	Msg    string
}

func (e *TemplateError) Error() string { return e.Msg }

// Column turns a byte offset into a 1-based column counted in characters.
func Column(s string, offset int) int {
	if offset > len(s) {
		offset = len(s)
	}
	if offset < 0 {
		offset = 0
	}
	return utf8.RuneCountInString(s[:offset]) + 1
}

// ParseTemplate splits a summary template into parts. Expressions are
// delimited by {{ and }}; inside one, braces and string literals are
// tracked so that a CEL map literal or a string containing "}}" does not end
// it early. A "}}" in literal text is refused as unbalanced: write
// {{ '}}' }} for literal braces.
func ParseTemplate(s string) ([]Part, error) {
	var parts []Part
	textStart := 0
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "{{"):
			if i > textStart {
				parts = append(parts, Part{Text: s[textStart:i], Offset: textStart})
			}
			end, err := scanExpr(s, i+2)
			if err != nil {
				return nil, err
			}
			raw := s[i+2 : end]
			expr := strings.TrimSpace(raw)
			if expr == "" {
				return nil, &TemplateError{Offset: i, Msg: fmt.Sprintf("column %d: empty {{ }}: put a CEL expression between the braces", Column(s, i))}
			}
			lead := len(raw) - len(strings.TrimLeft(raw, " \t\r\n"))
			parts = append(parts, Part{Expr: expr, Offset: i + 2 + lead})
			i = end + 2
			textStart = i
		case strings.HasPrefix(s[i:], "}}"):
			return nil, &TemplateError{Offset: i, Msg: fmt.Sprintf("column %d: unbalanced }} with no {{ before it (write {{ '}}' }} for literal braces)", Column(s, i))}
		default:
			i++
		}
	}
	if textStart < len(s) {
		parts = append(parts, Part{Text: s[textStart:], Offset: textStart})
	}
	return parts, nil
}

// scanExpr returns the offset of the "}}" that closes the expression
// starting at from.
func scanExpr(s string, from int) (int, error) {
	depth := 0
	for j := from; j < len(s); j++ {
		switch c := s[j]; c {
		case '\'', '"':
			k, ok := skipString(s, j)
			if !ok {
				return 0, &TemplateError{Offset: j, Msg: fmt.Sprintf("column %d: unterminated string literal in {{ }}", Column(s, j))}
			}
			j = k
		case '{':
			depth++
		case '}':
			if depth == 0 {
				if j+1 < len(s) && s[j+1] == '}' {
					return j, nil
				}
				return 0, &TemplateError{Offset: j, Msg: fmt.Sprintf("column %d: unbalanced } in {{ }}", Column(s, j))}
			}
			depth--
		}
	}
	return 0, &TemplateError{Offset: from - 2, Msg: fmt.Sprintf("column %d: {{ is not closed by }}", Column(s, from-2))}
}

// skipString returns the offset of the quote that ends the string literal
// opening at s[at] (triple-quoted strings included), honouring backslash
// escapes.
func skipString(s string, at int) (int, bool) {
	q := s[at]
	if strings.HasPrefix(s[at:], string([]byte{q, q, q})) {
		end := strings.Index(s[at+3:], string([]byte{q, q, q}))
		if end < 0 {
			return 0, false
		}
		return at + 3 + end + 2, true
	}
	for k := at + 1; k < len(s); k++ {
		switch s[k] {
		case '\\':
			k++
		case q:
			return k, true
		case '\n':
			return 0, false
		}
	}
	return 0, false
}
