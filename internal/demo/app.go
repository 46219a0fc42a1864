// Package demo is the stand-in application of `rollout demo` and the end-to-end tests: an HTTP
// service whose health per stamp follows what Terraform deployed there.
package demo

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Deployed is what the stamp module writes for one target.
type Deployed struct {
	Version string `json:"version"`
	Healthy bool   `json:"healthy"`
	Target  string `json:"target"`
}

// App serves GET /stamps/<target>/healthz from Dir/<target>.json: 200 {"status":"ok"} when the
// deployed release is healthy, 503 when it is not, 404 when nothing is deployed there.
type App struct{ Dir string }

func (a App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/stamps/")
	target, tail, _ := strings.Cut(rest, "/")
	if !ok || tail != "healthz" || target == "" || strings.Contains(target, "..") {
		http.NotFound(w, r)
		return
	}
	d, err := Read(a.Dir, target)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case err != nil:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "absent", "error": err.Error()})
	case !d.Healthy:
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "failing", "version": d.Version})
	default:
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok", "version": d.Version})
	}
}

// Read returns what is deployed on target.
func Read(dir, target string) (Deployed, error) {
	var d Deployed
	b, err := os.ReadFile(filepath.Join(dir, target+".json"))
	if err != nil {
		return d, err
	}
	err = json.Unmarshal(b, &d)
	return d, err
}
