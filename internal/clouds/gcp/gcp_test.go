package gcp_test

import (
	"testing"

	"github.com/rollout-dev/rollout/internal/clouds/conformance"
	"github.com/rollout-dev/rollout/internal/clouds/gcp"
	"github.com/rollout-dev/rollout/internal/testsupport/gcptest"
)

const boundaries = `  gcp: {cloud: gcp, identity: {project: svc-prod}}
  gcp-s3ns:
    cloud: gcp
    universeDomain: s3nsapis.fr
    regions: [u-france-east1]
    identity: {credentialsFile: /etc/s3ns/wif.json}
    endpoints: {storage: "https://storage.s3nsapis.fr"}
`

const targets = `- name: usc1
  boundary: gcp
  region: us-central1
  backend: {type: gcs, config: {bucket: state, prefix: usc1}}
- name: fr-1
  boundary: gcp-s3ns
  region: u-france-east1
  vars: {universe_domain: s3nsapis.fr}
  backend: {type: gcs, config: {bucket: state, prefix: fr-1, storage_custom_endpoint: "https://storage.s3nsapis.fr/storage/v1/"}}
`

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Fixture{
		Cloud: gcp.Cloud{}, Boundaries: boundaries, Targets: targets,
		Sovereign: []string{"gcp-s3ns"},
		WantEnv: map[string]map[string]string{
			"usc1": {"GOOGLE_CLOUD_UNIVERSE_DOMAIN": "googleapis.com", "GOOGLE_PROJECT": "svc-prod", "GOOGLE_REGION": "us-central1"},
			"fr-1": {"GOOGLE_CLOUD_UNIVERSE_DOMAIN": "s3nsapis.fr", "GOOGLE_APPLICATION_CREDENTIALS": "/etc/s3ns/wif.json"},
		},
		Prefixes: []string{"GOOGLE_"},
		Refused: []conformance.Refusal{
			{Name: "a region the universe does not list", Old: "region: u-france-east1", New: "region: europe-west4",
				Key: "targets[fr-1].region", Msg: "is not one of boundary gcp-s3ns's regions"},
			{Name: "not a region name", Old: "region: us-central1", New: "region: US Central",
				Key: "targets[usc1].region", Msg: "not a Google Cloud region name"},
			{Name: "commercial storage for sovereign state", Old: "https://storage.s3nsapis.fr/storage/v1/", New: "https://storage.googleapis.com/storage/v1/",
				Key: "targets[fr-1].backend.config.storage_custom_endpoint", Msg: "commercial Google Cloud universe"},
			{Name: "sovereign state without its endpoint", Old: `, storage_custom_endpoint: "https://storage.s3nsapis.fr/storage/v1/"`, New: "",
				Key: "targets[fr-1].backend.config.storage_custom_endpoint", Msg: "is required in universe s3nsapis.fr"},
			{Name: "a commercial endpoint", Old: `storage: "https://storage.s3nsapis.fr"`, New: `storage: "https://storage.googleapis.com"`,
				Key: "boundaries.gcp-s3ns.endpoints.storage", Msg: "outside this boundary"},
			{Name: "a sovereign universe without its own credential", Old: "identity: {credentialsFile: /etc/s3ns/wif.json}", New: "identity: {project: p}",
				Key: "boundaries.gcp-s3ns.identity", Msg: "needs identity.credentialsFile"},
			{Name: "a variable handing the provider another universe", Old: "vars: {universe_domain: s3nsapis.fr}", New: "vars: {universe_domain: googleapis.com}",
				Key: "targets[fr-1].vars.universe_domain", Msg: "boundary gcp-s3ns is s3nsapis.fr"},
		},
		Preflight: func(t *testing.T) conformance.StandIn {
			tok := gcptest.Token(t)
			return conformance.StandIn{
				Boundaries: "  g: {cloud: gcp, identity: {credentialsFile: " + gcptest.ServiceAccountFile(t, tok.URL, "") + "}}\n",
				Targets:    "- {name: g-1, boundary: g, region: us-central1, backend: {type: gcs, config: {bucket: b}}}\n",
				Boundary:   "g", Principal: "deployer@svc-prod.iam.gserviceaccount.com",
				Refuse: func() { tok.Status.Store(400) },
			}
		},
	})
}
