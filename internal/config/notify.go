package config

import (
	"fmt"
	"net/url"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Notify is a webhook told what runs need from people and how they end (notify: in rollout.yaml).
// Its URL is a secret: give the variable that holds it (urlEnv); a url written in the file is
// accepted, never printed.
type Notify struct {
	Name   string
	URLEnv string   // the variable of rollout's environment that holds the URL
	URL    string   // the URL itself (prefer urlEnv)
	Format string   // json (default), slack or teams
	On     []string // kinds (none: all): started, approval, inconclusive, rolled_back, rollback_failed, finished
	Line   int
}

// NotifyKinds and NotifyFormats are what notify entries may name.
var (
	NotifyKinds   = []string{"started", "approval", "inconclusive", "rolled_back", "rollback_failed", "finished"}
	NotifyFormats = []string{"json", "slack", "teams"}
)

func parseNotify(w walker, n *yaml.Node) []*Notify {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		w.fail(n, "notify", "must be a list of webhooks")
		return nil
	}
	var out []*Notify
	seen := map[string]bool{}
	for i, e := range n.Content {
		path := fmt.Sprintf("notify[%d]", i)
		f := w.fields(e, path, "name", "url", "urlEnv", "format", "on")
		nt := &Notify{Name: w.str(f["name"], path+".name"), URL: w.str(f["url"], path+".url"), URLEnv: w.str(f["urlEnv"], path+".urlEnv"),
			Format: w.str(f["format"], path+".format"), On: w.strings(f["on"], path+".on"), Line: e.Line}
		switch {
		case nt.Name == "":
			w.fail(e, path+".name", "is required: it names the webhook in messages, never its URL")
		case seen[nt.Name]:
			w.fail(f["name"], path+".name", "webhook %q is declared twice", nt.Name)
		}
		seen[nt.Name] = true
		if (nt.URL == "") == (nt.URLEnv == "") {
			w.fail(e, path, "give the webhook's URL in exactly one of urlEnv (the variable that holds it: it is a secret) or url")
		}
		if nt.URL != "" {
			if u, err := url.Parse(nt.URL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
				w.fail(f["url"], path+".url", "want an http(s) URL") // the value is not echoed: it is a secret
			}
		}
		if nt.Format != "" && !slices.Contains(NotifyFormats, nt.Format) {
			w.fail(f["format"], path+".format", "unknown format %q (json, slack, teams)", nt.Format)
		}
		for j, k := range nt.On {
			if !slices.Contains(NotifyKinds, k) {
				w.fail(f["on"].Content[j], fmt.Sprintf("%s.on[%d]", path, j), "unknown kind %q (%v)", k, NotifyKinds)
			}
		}
		out = append(out, nt)
	}
	return out
}

// Telemetry is a trace collector: an OTLP/HTTP endpoint (http(s)://host:4318).
type Telemetry struct {
	Endpoint string
}

func parseTelemetry(w walker, path string, n *yaml.Node) *Telemetry {
	if n == nil {
		return nil
	}
	f := w.fields(n, path, "endpoint")
	t := &Telemetry{Endpoint: w.str(f["endpoint"], path+".endpoint")}
	if u, err := url.Parse(t.Endpoint); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		w.fail(n, path+".endpoint", "want the collector's OTLP/HTTP URL, such as https://otel.example:4318")
	}
	return t
}
