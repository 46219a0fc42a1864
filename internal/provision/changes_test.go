package provision

import (
	"encoding/json"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"
)

// A reviewer sees each changed attribute before and after; sensitive values are masked as
// Terraform masks them, values known only after the apply say so, and unchanged ones are left out.
func TestPlanChangesShowAttributesMasked(t *testing.T) {
	var plan tfjson.Plan
	doc := `{"format_version":"1.2","resource_changes":[
	 {"address":"aws_db_instance.main","change":{"actions":["update"],
	   "before":{"engine":"postgres","engine_version":"15.4","password":"old-secret","tags":{"release":"v1","team":"pay"}},
	   "after":{"engine":"postgres","engine_version":"16.1","password":"new-secret","tags":{"release":"v2","team":"pay"}},
	   "before_sensitive":{"password":true},"after_sensitive":{"password":true},"after_unknown":{}}},
	 {"address":"terraform_data.db","change":{"actions":["update"],
	   "before":{"input":"first-Secret-1","output":"first-Secret-1"},"after":{"input":"second-Secret-2"},
	   "before_sensitive":{"input":true},"after_sensitive":{"input":true},"after_unknown":{"output":true}}},
	 {"address":"terraform_data.app","change":{"actions":["delete","create"],
	   "before":{"id":"abc","input":"v1"},"after":{"input":"v2"},"after_unknown":{"id":true}}},
	 {"address":"time_static.deployed","change":{"actions":["no-op"],"before":{"id":"x"},"after":{"id":"x"}}}]}`
	if err := json.Unmarshal([]byte(doc), &plan); err != nil {
		t.Fatal(err)
	}
	got := PlanChanges(&plan)
	if len(got) != 3 || got[0].Address != "aws_db_instance.main" || got[0].Action != "update" || got[1].Action != "replace" {
		t.Fatalf("changes: %+v", got)
	}
	want := map[string][2]any{"engine_version": {"15.4", "16.1"}, "password": {"(sensitive)", "(sensitive)"}, "tags.release": {"v1", "v2"}}
	if len(got[0].Attributes) != len(want) {
		t.Fatalf("attributes: %+v", got[0].Attributes)
	}
	for _, a := range got[0].Attributes {
		if w, ok := want[a.Path]; !ok || a.Before != w[0] || a.After != w[1] {
			t.Errorf("%s: %v -> %v, want %v", a.Path, a.Before, a.After, w)
		}
	}
	b, _ := json.Marshal(got)
	if strings.Contains(string(b), "old-secret") || strings.Contains(string(b), "new-secret") || strings.Contains(string(b), "Secret-") {
		t.Fatalf("a sensitive value is shown: %s", b)
	}
	rep := map[string][2]any{}
	for _, a := range got[1].Attributes {
		rep[a.Path] = [2]any{a.Before, a.After}
	}
	if rep["input"] != [2]any{"v1", "v2"} || rep["id"] != [2]any{"abc", "(known after apply)"} {
		t.Fatalf("replacement: %+v", got[1].Attributes)
	}
}
