# rollout: `make demo` runs the demo on a fresh machine; `make test` runs every test.
SHELL := bash
GO    ?= go
TOOLS := $(CURDIR)/.tools
# The binary and provider mirror that `make tools` puts under .tools/, and the servers of the
# tests that `make test-tools` adds (see scripts/tools.sh).
RUN_ENV := ROLLOUT_TF_BIN=$(TOOLS)/bin/tf TF_CLI_CONFIG_FILE=$(TOOLS)/tf.rc \
	ROLLOUT_VERSITYGW=$(TOOLS)/bin/versitygw ROLLOUT_FAKE_GCS=$(TOOLS)/bin/fake-gcs-server \
	ROLLOUT_AZURITE=$(TOOLS)/bin/azurite-blob ROLLOUT_JAEGER=$(TOOLS)/bin/jaeger ROLLOUT_COSIGN=$(TOOLS)/bin/cosign ROLLOUT_CYCLONEDX=$(TOOLS)/bin/cyclonedx-gomod ROLLOUT_TEMPORAL_CLI=$(TOOLS)/bin/temporal

.PHONY: all tools test-tools build release demo test test-unit test-e2e test-terraform vet clean bench bench-large bench-stack bench-tracing bench-temporal chaos fuzz

all: build

tools:
	@bash scripts/tools.sh

test-tools:
	@bash scripts/tools.sh test

build:
	$(GO) build -buildvcs=auto -o bin/rollout ./cmd/rollout

# The release: archives per platform, SBOMs, signed checksums, SLSA provenance, an OCI layout in
# dist/ (docs/release.md). KEY=keys/release.key signs it; without, a snapshot key does.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo snapshot)
release:
	@bash scripts/tools.sh release
	$(GO) run ./cmd/release --version $(VERSION) --out dist $(if $(KEY),--key $(KEY))

demo: tools build
	$(RUN_ENV) bin/rollout demo

vet:
	$(GO) vet -tags e2e ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

test-unit:
	ROLLOUT_TEMPORAL_CLI=$(TOOLS)/bin/temporal $(GO) test -race -count=1 ./internal/...
	ROLLOUT_TEMPORAL_CLI=$(TOOLS)/bin/temporal $(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./internal/bench/ # benchmarks run once, so they cannot rot

# End-to-end: the real rollout binary against real OpenTofu (or Terraform) on temporary fleets.
test-e2e: test-tools
	$(RUN_ENV) $(GO) test -tags e2e -count=1 -parallel 4 -timeout 25m ./test/e2e/

# The end-to-end tests that touch Terraform's own behaviour (state backends and their locks, direct
# and plan-first apply, plan review, drift, a kill mid-apply, provider mirrors and lock files,
# tracing, stacks and approval by plan), against the terraform on PATH instead of .tools/bin/tf: CI runs them after make test
# where a terraform binary is on the machine (the whole suite runs against the pinned OpenTofu).
TF_TESTS := TestStateLivesInEachBoundarysOwnBucket|TestAStaleLockOfAKilledRunIsReleasedAndAForeignOneIsNot|TestApplyModes|TestPlanReviewAndProtectedDestroy|TestPlanDetailForReview|TestDriftFoundAndBlockingPromotion|TestKillMidApplyThenResume|TestBoundaryProviderMirror|TestReleaseCrossesTheAirGapWithItsEvidence|TestTracesRespectSovereignBoundaries|TestPromotionPlanAndManualRollback|TestAStampIsAStack|TestAComponentsGatesStopItsStack|TestAStacksReleaseCrossesTheAirGap|TestApprovalWaivedByPlans|TestARemovedComponentIsDestroyedOnlyWhenAllowed
test-terraform: test-tools
	@command -v terraform >/dev/null || { echo "test-terraform: no terraform on PATH"; exit 1; }
	$(RUN_ENV) ROLLOUT_TF_BIN=$$(command -v terraform) ROLLOUT_REQUIRE_POSTGRES=1 ROLLOUT_REQUIRE_OBJECT_STORES=1 \
	bash scripts/with-postgres.sh $(GO) test -tags e2e -count=1 -timeout 15m -run '^($(TF_TESTS))$$' ./test/e2e/

# The whole suite, with a throw-away PostgreSQL on loopback (installed from Debian's packages when
# missing) for the journal's conformance suite and the shared-state end-to-end tests.
test: vet test-tools
	bash scripts/need-prometheus.sh
	bash scripts/need-chromium.sh
	ROLLOUT_REQUIRE_POSTGRES=1 ROLLOUT_REQUIRE_PROMETHEUS=1 ROLLOUT_REQUIRE_OBJECT_STORES=1 ROLLOUT_REQUIRE_BROWSER=1 ROLLOUT_REQUIRE_COSIGN=1 ROLLOUT_REQUIRE_TEMPORAL=1 \
	ROLLOUT_ARTIFACTS=$(CURDIR)/test-artifacts bash scripts/with-postgres.sh $(MAKE) --no-print-directory test-unit test-e2e

clean:
	rm -rf bin

# Orchestration overhead against bare OpenTofu in the same run (see docs/benchmarks.md). Both
# build and measure the pinned OpenTofu, whatever terraform or tofu is on PATH.
bench bench-large: export ROLLOUT_BUILD_TOFU := 1
bench: tools
	$(GO) test -run '^$$' -bench . -benchtime 1x -count 3 ./internal/bench/
	PARALLEL="8 32" bash scripts/bench.sh 16 64

# A three-component stack (terraform/stack) over N stamps against the floor: bare OpenTofu per
# component in dependency order per stamp, at the same parallelism (scripts/bench-stack.sh).
bench-stack: export ROLLOUT_BUILD_TOFU := 1
bench-stack: tools
	bash scripts/bench-stack.sh 16 64

# Tracing on against off over one ring of 64 stamps, to a real Jaeger (scripts/bench-tracing.sh).
bench-tracing: export ROLLOUT_BUILD_TOFU := 1
bench-tracing: test-tools
	bash scripts/bench-tracing.sh 64

# The engine on Temporal against the in-process engine over one ring of 64 stamps, on a local
# Temporal development server (scripts/bench-temporal.sh; docs/temporal.md).
bench-temporal: export ROLLOUT_BUILD_TOFU := 1
bench-temporal: test-tools
	bash scripts/bench-temporal.sh 64

# N=256, cold then two warm releases in the order A B B A, at parallelism LARGE_PARALLEL: about
# 19 minutes for 8 on 2 cores, so not part of make bench's 15-minute budget; LARGE_PARALLEL="8 32"
# adds parallelism 32 (about 20 minutes more).
LARGE_PARALLEL ?= 8
bench-large: tools
	PARALLEL="$(LARGE_PARALLEL)" ROUNDS=2 bash scripts/bench.sh 256

# The chaos suite at full size: 50 SIGKILLs of rollout during a three-ring rollout against real
# OpenTofu, each followed by a resume, with local state and with state on a real S3 server, plus
# the injected-fault scenario; prints the tallies.
# (make test runs the same tests with 5 kills.) ROLLOUT_CHAOS_SEED=N replays a sequence.
chaos: test-tools
	$(RUN_ENV) ROLLOUT_CHAOS_KILLS=$${ROLLOUT_CHAOS_KILLS:-50} $(GO) test -tags e2e -count=1 -timeout 30m -v -run 'TestChaos' ./test/e2e/ | grep -v '^=== RUN'

# Fuzz configuration loading, names, command gate scripts, bundle unpacking and the Terraform
# diagnostic classifier, FUZZTIME each (default 30s); then the engine's properties over
# RAPID_CHECKS random runs (default 20000; make test runs 100).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $${FUZZTIME:-30s} ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzNames$$' -fuzztime $${FUZZTIME:-30s} ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzShellTemplate$$' -fuzztime $${FUZZTIME:-30s} ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzUnbundle$$' -fuzztime $${FUZZTIME:-30s} ./internal/provision/
	$(GO) test -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $${FUZZTIME:-30s} ./internal/provision/
	$(GO) test -count=1 -run '^TestEngineProperties$$' -rapid.checks=$${RAPID_CHECKS:-20000} ./internal/rings/
