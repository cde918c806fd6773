# FIDO operator. `make run` brings everything up on a local control plane;
# `make test` runs unit and integration tests against a real API server.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN_VERSION ?= v0.23.0
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_GEN_VERSION)
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
HELM_VERSION ?= v4.3.1
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
CHART ?= charts/fido
PROMTOOL_VERSION ?= v0.316.0
PROMTOOL ?= $(LOCALBIN)/promtool-$(PROMTOOL_VERSION)
# Real kube-apiserver, etcd and kubectl built from the Go module proxy and
# cached outside the checkout (see hack/k8s).
K8S_ASSETS = $(shell hack/k8s/build.sh)
GO_TEST_FLAGS ?=

.PHONY: all
all: build

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from the API types and markers.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=fido-manager-role paths=./controllers/... paths=./internal/... output:rbac:artifacts:config=config/rbac
	@$(MAKE) --no-print-directory chart-sync

.PHONY: chart-sync
chart-sync: ## Copy the CRDs, config/rbac and config/admission into charts/fido, and the release into its appVersion (never edit the copies).
	rm -rf $(CHART)/crds $(CHART)/files/rbac $(CHART)/files/admission
	mkdir -p $(CHART)/crds $(CHART)/files/rbac $(CHART)/files/admission
	cp config/crd/bases/*.yaml $(CHART)/crds/
	for d in rbac admission; do for f in $$(sed -n 's/^- //p' config/$$d/kustomization.yaml); do cp config/$$d/$$f $(CHART)/files/$$d/; done; done
	tag=$$(sed -n 's/^ *newTag: *//p' config/manager/kustomization.yaml) && sed -i "s/^appVersion: .*/appVersion: $$tag/" $(CHART)/Chart.yaml

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: docs
docs: manifests ## Generate docs/api.md from the CRDs.
	go run ./hack/apidocs config/crd/bases docs/api.md

.PHONY: monitoring
monitoring: ## Generate config/monitoring/prometheusrule.yaml from the rules file promtool tests.
	hack/prometheusrule.sh config/monitoring/rules/fido.rules.yaml > config/monitoring/prometheusrule.yaml

.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -w $$(git ls-files -co --exclude-standard '*.go')

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint with .golangci.yml (importas, unused, errorlint, thelper, gocritic, ...).
	$(GOLANGCI_LINT) run ./...

.PHONY: verify
verify: manifests generate docs monitoring lint ## Fail when generated files, formatting or lint drift from the sources.
	@test -z "$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go'))" || { gofmt -l $$(git ls-files -co --exclude-standard '*.go'); echo "gofmt needed"; exit 1; }
	@git diff --exit-code -- config/crd config/rbac api docs/api.md || { echo "generated files are out of date: run 'make manifests generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- config/crd config/rbac api docs/api.md)" || { git status --porcelain -- config/crd config/rbac api docs/api.md; echo "untracked generated files"; exit 1; }
	@test -z "$$(git status --porcelain -- config/monitoring/prometheusrule.yaml)" || { git diff -- config/monitoring/prometheusrule.yaml; echo "config/monitoring/prometheusrule.yaml differs from config/monitoring/rules: run 'make monitoring' and commit"; exit 1; }
	@git diff --exit-code -- $(CHART)/crds $(CHART)/files $(CHART)/Chart.yaml || { echo "$(CHART) differs from config/: run 'make chart-sync' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- $(CHART)/crds $(CHART)/files)" || { git status --porcelain -- $(CHART)/crds $(CHART)/files; echo "untracked chart copies of config/"; exit 1; }

.PHONY: k8s-assets
k8s-assets: ## Build (or reuse) kube-apiserver, etcd and kubectl; prints their directory.
	@hack/k8s/build.sh

.PHONY: test
test: manifests generate vet ## Unit tests and integration tests against a real kube-apiserver + etcd.
	KUBEBUILDER_ASSETS="$(K8S_ASSETS)" go test $(GO_TEST_FLAGS) ./... -coverprofile cover.out

.PHONY: test-monitoring
test-monitoring: $(PROMTOOL) ## promtool check and unit tests of the alert rules; the dashboard and rules query only metrics the operator defines.
	$(PROMTOOL) check rules config/monitoring/rules/fido.rules.yaml
	$(PROMTOOL) test rules config/monitoring/tests/*.yaml
	PROMTOOL=$(PROMTOOL) go test -count=1 ./test/monitoring/

.PHONY: test-e2e
test-e2e: manifests $(HELM) ## End-to-end: bin/fido as its own process, driven through kubectl and HTTP, with the dev node when root (FIDO_NODE=0: without).
	node=$$(if [ "$$(id -u)" = 0 ] && [ "$(FIDO_NODE)" != 0 ]; then hack/node/build.sh; fi) && \
	FIDO_NODE_ASSETS="$$node" KUBEBUILDER_ASSETS="$(K8S_ASSETS)" go test -tags e2e -count=1 -timeout 20m ./test/e2e/

.PHONY: test-chart
test-chart: $(HELM) ## helm lint --strict and helm template of charts/fido: defaults, every option (charts/fido/ci), values the schema refuses.
	$(HELM) lint --strict $(CHART)
	for f in $(CHART)/ci/*-values.yaml; do $(HELM) lint --strict $(CHART) -f $$f; done
	$(HELM) template fido $(CHART) --namespace fido-system --include-crds > /dev/null
	for f in $(CHART)/ci/*-values.yaml; do $(HELM) template fido $(CHART) --namespace fido-system --include-crds -f $$f > /dev/null; done
	@for bad in enforcement=off replicaCount=0 retention.closedIncidents=30d logLevel=warn tls.mode=existingSecret \
	    archive.format=syslog archive.log=false egressAllowCIDRs={10.0.0.1} extraArgs={leader-elect} console.enabled=yes console.port=1 namespace.create=yes unknown=1; do \
	  if $(HELM) template fido $(CHART) --set "$$bad" > /dev/null 2>&1; then echo "values.schema.json accepted --set $$bad"; exit 1; fi; \
	done; echo "values.schema.json refused every bad value"

.PHONY: bench
bench: bench-micro bench-containment bench-node bench-admission ## All benchmarks; docs/benchmarks.md records their figures.

.PHONY: bench-micro
bench-micro: ## Micro-benchmarks: scoring, indicator index, RBAC reach, ingest path.
	KUBEBUILDER_ASSETS="$(K8S_ASSETS)" go test -run '^$$' -bench . -benchmem -cpu 1 ./internal/...

.PHONY: bench-containment
bench-containment: build ## Alert-to-NetworkPolicy containment against a local control plane (BENCH_ARGS to tune).
	KUBEBUILDER_ASSETS="$(K8S_ASSETS)" go run ./test/bench -idle 50 -burst 1000 -senders 50 -incidents 10000,50000 $(BENCH_ARGS)

.PHONY: bench-node
bench-node: manifests build ## Alert to the first connection the dev node drops, 20 runs (root; FIDO_E2E_OPERATOR=old-binary to compare builds).
	node=$$(hack/node/build.sh) && FIDO_NODE_ASSETS="$$node" KUBEBUILDER_ASSETS="$(K8S_ASSETS)" \
	  go test -tags e2e -count=1 -timeout 20m -run '^$$' -bench AlertToDroppedConnection -benchtime 20x ./test/e2e/

.PHONY: bench-admission
bench-admission: manifests ## What the stay-contained admission policies cost an unrelated pod write: p50/p99 with and without, side by side.
	KUBEBUILDER_ASSETS="$(K8S_ASSETS)" go test -tags e2e -count=1 -timeout 20m -run '^$$' -bench StayContainedAdmissionCost -benchtime 2000x ./test/e2e/

##@ Build and run

.PHONY: build
build: ## Build the manager binary bin/fido and the kubectl plugin bin/kubectl-fido.
	go build -o $(LOCALBIN)/fido .
	go build -o $(LOCALBIN)/kubectl-fido ./cmd/kubectl-fido

IMAGE_TAG = $(shell sed -n 's/^ *newTag: *//p' config/manager/kustomization.yaml)
IMAGE ?= ghcr.io/fido-operator/fido:$(IMAGE_TAG)

.PHONY: image
image: ## Build the operator image without a container engine: an OCI layout in dist/image; the last line is its digest.
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "-s -w -buildid=" -o $(LOCALBIN)/fido-linux-amd64 .
	@go run ./hack/image -binary $(LOCALBIN)/fido-linux-amd64 -out dist/image -tag $(IMAGE) -revision "$$(git rev-parse HEAD 2>/dev/null)"

.PHONY: image-reproducible
image-reproducible: ## Build the image twice, from a clean build cache the second time, and fail unless the digests match.
	first=$$($(MAKE) -s image | tail -1) && cache=$$(mktemp -d) && \
	second=$$(GOCACHE=$$cache $(MAKE) -s image | tail -1); rm -rf "$$cache"; \
	echo "first build $$first, from an empty cache $$second" && test -n "$$first" && test "$$first" = "$$second"

.PHONY: run
run: manifests build ## Start a local control plane and dev node (unless KUBECONFIG is set; FIDO_NODE=0: no node) and run the operator in the foreground.
	@mkdir -p .fido && assets="$(K8S_ASSETS)" && ln -sf "$$assets/kubectl" $(LOCALBIN)/kubectl && \
	node=$$(if [ "$(FIDO_NODE)" != 0 ] && [ -z "$(KUBECONFIG)" ] && [ "$$(id -u)" = 0 ]; then hack/node/build.sh || true; fi) && \
	FIDO_NODE_ASSETS="$$node" KUBEBUILDER_ASSETS="$$assets" $(LOCALBIN)/fido --dev-cluster=$(if $(KUBECONFIG),false,true) \
		--ingest-spool-path=$(CURDIR)/.fido/ingest-spool.db --egress-allow-cidrs=127.0.0.1/32 --zap-devel=true --zap-log-level=info $(RUN_ARGS)

.PHONY: node-import
node-import: ## Import an image archive (docker save or OCI layout tar: IMAGE=file.tar) into the running dev node's containerd.
	@test -n "$(IMAGE)" || { echo "usage: make node-import IMAGE=image.tar"; exit 1; }
	"$$(hack/node/build.sh)/ctr" -a .fido/node/run/containerd.sock -n k8s.io images import "$(IMAGE)"

$(CONTROLLER_GEN):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(LOCALBIN)/controller-gen $(CONTROLLER_GEN)

$(GOLANGCI_LINT):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) GOFLAGS=-mod=mod go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(LOCALBIN)/golangci-lint $(GOLANGCI_LINT)

$(HELM):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) GOFLAGS=-mod=mod go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	mv $(LOCALBIN)/helm $(HELM)

$(PROMTOOL):
	mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) GOFLAGS=-mod=mod go install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
	mv $(LOCALBIN)/promtool $(PROMTOOL)

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
