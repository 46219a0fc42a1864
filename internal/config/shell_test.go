package config

import (
	"strings"
	"testing"
)

func TestShellTemplatePassesValuesAsArguments(t *testing.T) {
	for script, want := range map[string]string{
		`echo checking {{ index .Target.Labels "tier" }}`: `echo checking "${1}"`,
		`curl -sf "{{ .Outputs.endpoint }}/healthz" -o x`: `curl -sf "${1}/healthz" -o x`,
		`test ! -e deployed/ALERT`:                        `test ! -e deployed/ALERT`,
		`a={{ .A }} b="{{ .B }}" c=\"{{ .C }}`:            `a="${1}" b="${2}" c=\""${3}"`,
		`echo 'it''s' {{ .X }}`:                           `echo 'it''s' "${1}"`,
	} {
		got, actions, err := ShellTemplate(script)
		if err != nil || got != want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", script, got, err, want)
		}
		if n := strings.Count(script, "{{"); len(actions) != n {
			t.Errorf("%s: %d actions, want %d", script, len(actions), n)
		}
	}
	for _, bad := range []string{`echo '{{ .X }}'`, `{{ if .X }}rm -rf /{{ end }}`, `{{ range .L }}{{ . }}{{ end }}`, `{{ $x := .X }}echo`} {
		if _, _, err := ShellTemplate(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
