package config

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"
)

// ShellTemplate turns a command gate's shell script (run as one string, under sh -c) into a
// script that takes its data as arguments: every {{ ... }} in it becomes a positional parameter
// ("${1}", "${2}", ..., quoted as its place in the script needs), and the actions come back to be
// rendered and passed as those arguments. So a value (a label, a Terraform output) is never pasted
// into the script as text: `echo checking {{ .Outputs.endpoint }}` runs `echo checking "${1}"` with
// the endpoint as $1, whatever characters it holds. A value inside single quotes could not expand,
// and if/range/with/template would build code from data: both are refused.
func ShellTemplate(script string) (string, []string, error) {
	t, err := template.New("run").Option("missingkey=error").Parse(script)
	if err != nil {
		return "", nil, err
	}
	if t.Tree == nil {
		return script, nil, nil
	}
	var out strings.Builder
	var actions []string
	q := quoteState{}
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			out.Write(n.Text)
			q.scan(n.Text)
		case *parse.ActionNode:
			if len(n.Pipe.Decl) > 0 {
				return "", nil, errors.New("a variable declaration ({{ $x := ... }}) has no place in a command: use the value directly")
			}
			actions = append(actions, n.String())
			switch q.state {
			case single:
				return "", nil, fmt.Errorf("%s is inside single quotes, where it could not expand: write it unquoted (rollout passes it to the script as one quoted argument)", n.String())
			case double:
				fmt.Fprintf(&out, "${%d}", len(actions))
			default:
				fmt.Fprintf(&out, `"${%d}"`, len(actions))
			}
		case *parse.CommentNode:
		default:
			return "", nil, fmt.Errorf("%s: if, range, with and template would build the command from data: compute the value in Terraform (an output) or use run as a list of arguments", n.String())
		}
	}
	return out.String(), actions, nil
}

const (
	plain = iota
	single
	double
)

// quoteState follows a POSIX shell's quoting across the script's text.
type quoteState struct {
	state   int
	escaped bool
}

func (q *quoteState) scan(text []byte) {
	for _, c := range text {
		switch {
		case q.escaped:
			q.escaped = false
		case c == '\\' && q.state != single:
			q.escaped = true
		case c == '\'' && q.state == plain:
			q.state = single
		case c == '\'' && q.state == single:
			q.state = plain
		case c == '"' && q.state == plain:
			q.state = double
		case c == '"' && q.state == double:
			q.state = plain
		}
	}
}
