# Two commands: `make run` (the whole platform on this machine) and `make test` (every test).
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test test-unit test-integration lint token reset contracts contracts-check manifests browser postgres kafka kafka-install keycloak-install axe-install kcat wrk

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

LOCKED := $(UV) uv.lock pyproject.toml shared/pyproject.toml services/*/pyproject.toml \
	tools/devtools/pyproject.toml

# What the platform runs, without the test and lint tools (--inexact: a full install stays full).
.venv/.runtime: $(LOCKED)
	$(UV) sync --frozen --no-dev --inexact --python $(PYTHON)
	touch $@

.venv/.synced: $(LOCKED)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@ .venv/.runtime

install: .venv/.synced  ## install everything into .venv (from the lock file)

run: .venv/.runtime  ## broker + four services + demo data; Ctrl-C stops all
	.venv/bin/bekal run

test: install postgres kafka-install keycloak-install axe-install  ## the whole suite: unit, integration (both brokers, SQLite, PostgreSQL), end-to-end
	bash scripts/test

test-unit: install
	.venv/bin/python -m pytest tests/unit

test-integration: install postgres kafka-install keycloak-install axe-install
	.venv/bin/python -m pytest tests/integration tests/e2e

lint: install
	.venv/bin/ruff check shared services tools tests benchmarks
	.venv/bin/ruff format --check shared services tools tests benchmarks
	.venv/bin/mypy shared/bekal services/*/bekal tools/devtools/bekal

token: .venv/.runtime  ## e.g. make token PRESET=training-admin
	@.venv/bin/bekal token --preset $(or $(PRESET),registry-admin)

browser:  ## Debian's Chromium for the dashboard test (root and apt-get needed; skipped when present)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "install Chromium (Debian package 'chromium') for the dashboard test"; fi; }

contracts: install  ## regenerate AsyncAPI, event schemas, Kafka topics/ACLs, kustomize bases
	.venv/bin/bekal contracts generate

contracts-check: install  ## fail when a generated contract or manifest is out of date
	.venv/bin/bekal contracts check

manifests: install  ## render every kustomize overlay (needs nothing but the dev tools)
	@for overlay in deploy/overlays/*/ deploy/kafka/; do \
		echo "--- $$overlay"; .venv/bin/kubectl kustomize $$overlay > /dev/null || exit 1; done

kcat:  ## Debian's kcat for the integration guide's example (root and apt-get needed; skipped when present)
	@command -v kcat >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat; \
	  else echo "install kcat (Debian package 'kcat') for the integration guide's test"; fi; }

wrk:  ## Debian's wrk, the HTTP load generator of benchmarks/http_load.py and its smoke test (root and apt-get needed; skipped when present)
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
	  else echo "install wrk (Debian package 'wrk') for benchmarks/http_load.py"; fi; }

postgres:  ## PostgreSQL for the tests at 127.0.0.1:5432 (as root: installed and started when missing)
	@bash scripts/postgres

kafka-install: install  ## Apache Kafka 4.4.0's jars from Maven Central into .tools/ (Java 17 + Maven)
	@if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then \
	  .venv/bin/python -m bekal.devtools.apache_kafka install >/dev/null; \
	else echo "Apache Kafka tests need Java 17 and Maven (Debian: openjdk-17-jre-headless maven)"; fi

kafka: kafka-install  ## a local Apache Kafka (NODES=1 or 3) until Ctrl-C; then run with KAFKA_BOOTSTRAP_SERVERS
	.venv/bin/python -m bekal.devtools.apache_kafka run --nodes $(or $(NODES),1)

keycloak-install: install  ## Keycloak (the staff pages' OpenID provider in tests) from Maven Central into .tools/ (Maven; runs on Java 21+)
	@if command -v mvn >/dev/null 2>&1; then \
	  .venv/bin/python -m tests.support.keycloak install >/dev/null; \
	else echo "the staff pages' sign-in tests need Maven and Java 21+ for Keycloak (Debian: maven)"; fi

axe-install:  ## axe-core (npm, pinned in tools/axe-core) for the staff pages' accessibility tests
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tools/axe-core --no-audit --no-fund --silent; \
	else echo "the staff pages' accessibility tests need npm for axe-core (Debian: npm)"; fi

reset:  ## forget the local data (SQLite files, keys, logs)
	rm -rf var
