package azuritetest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The metadata stand-in answers each api-version in the shape Azure gives it (Terraform's backend
// asks for 2022-09-01 and reads one object; OpenTofu's asks for 2020-06-01 and reads a list), and
// refuses a version it does not know instead of answering it with another version's body.
func TestMetadataAnswersEachVersionInItsShape(t *testing.T) {
	srv := httptest.NewServer(MetadataHandler(Cloud{Name: "sov", ResourceManager: "https://arm.sov.test/", Login: "https://login.sov.test/", StorageSuffix: Suffix}))
	defer srv.Close()
	type cloud struct {
		Name, ResourceManager    string
		MicrosoftGraphResourceID string `json:"microsoftGraphResourceId"`
		Suffixes                 struct{ Storage string }
		Authentication           struct{ LoginEndpoint string }
	}
	get := func(version string, into any) int {
		resp, err := http.Get(srv.URL + "/metadata/endpoints?api-version=" + version)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if into != nil && resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
				t.Fatalf("api-version %s: %v", version, err)
			}
		}
		return resp.StatusCode
	}
	var one cloud
	if code := get("2022-09-01", &one); code != 200 || one.Name != "sov" || one.Suffixes.Storage != Suffix || one.Authentication.LoginEndpoint != "https://login.sov.test/" || one.MicrosoftGraphResourceID == "" {
		t.Fatalf("2022-09-01 (Terraform): %d %+v", code, one)
	}
	for _, v := range []string{"2019-05-01", "2020-06-01"} {
		var list []cloud
		if code := get(v, &list); code != 200 || len(list) != 1 || list[0].ResourceManager != "https://arm.sov.test/" {
			t.Fatalf("%s (OpenTofu): %d %+v", v, code, list)
		}
	}
	var first struct{ GalleryEndpoint *string }
	if code := get("2015-01-01", &first); code != 200 || first.GalleryEndpoint == nil {
		t.Fatalf("2015-01-01: %d %+v", code, first)
	}
	for _, v := range []string{"2099-01-01", ""} {
		if code := get(v, nil); code != http.StatusBadRequest {
			t.Fatalf("api-version %q: %d, want 400 (a version the stand-in does not know)", v, code)
		}
	}
}
