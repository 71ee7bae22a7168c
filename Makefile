# Two commands matter: `make run` and `make test`. `make help` lists the rest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

# make test talks to real servers; override either to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/items
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
# make drills DRILLS=short: the shorter drills CI runs; DRILLS_ARGS, e.g. --only failover.
DRILLS ?= full
SOAK_MINUTES ?= 10
# Where make run serves; where Debian's Chromium lives (tests/browser/conftest.py looks there).
RUN_ADDRESS ?= 127.0.0.1:8000
CHROMIUM ?= /usr/bin/chromium
# Tools the targets need come from Debian's packages, through sudo unless already root.
SUDO ?= $(if $(filter 0,$(shell id -u)),,sudo)
APT_INSTALL = $(SUDO) apt-get update -qq && \
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

# What the image runs, and so what bandit scans (bench/ and tests/ are tools on a laptop).
SHIPPED_CODE := backend items manage.py gunicorn.conf.py bin/healthcheck

.DEFAULT_GOAL := help
.PHONY: help install install-chromium run test lint format bench bench-cpu bench-instructions \
	drills soak upgrade-check clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-19s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv and install the pinned requirements

# Development values for every manage.py command (backend/settings.py reads the file; real
# environment variables win). Written once: edit it freely, delete it to start over.
.env:
	@echo "writing .env: development settings (debug on, a new random secret key)"
	@printf '%s\n' \
		"# Development settings for manage.py (make run wrote this; git and the image ignore it)." \
		"# Variables set in the environment win over these." \
		"DJANGO_DEBUG=1" \
		"DJANGO_SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
		> $@

run: install .env ## Serve the API on http://127.0.0.1:8000 (SQLite + in-process cache unless configured)
	$(BIN)/python manage.py migrate --noinput
	@echo ""
	@echo "  API       http://$(RUN_ADDRESS)/api/items/"
	@echo "  Docs      http://$(RUN_ADDRESS)/api/docs/  (Redoc: /api/redoc/, schema: /api/schema/)"
	@echo "  Admin     http://$(RUN_ADDRESS)/admin/  (create a user: $(BIN)/python manage.py createsuperuser)"
	@echo "  Settings  .env (development values; variables set in the environment win)"
	@echo ""
	$(BIN)/python manage.py runserver $(RUN_ADDRESS)

# The browser tests (tests/browser) drive Debian's Chromium; with SKIP_BROWSER_TESTS=1 they
# are skipped and make test installs nothing.
BROWSER_SETUP := $(if $(filter 1,$(SKIP_BROWSER_TESTS)),,install-chromium)

$(CHROMIUM):
	@echo "installing Chromium (Debian package) for the browser tests"
	$(APT_INSTALL) chromium
	@test -x $@ || { echo "Chromium is still missing at $@ after the install" >&2; exit 1; }

install-chromium: $(CHROMIUM) ## Install Debian's Chromium for the browser tests (make test does)

test: install lint $(BROWSER_SETUP) ## Run the whole suite against PostgreSQL and Redis (installs Chromium if missing)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff lint and format check, bandit, and no missing migration
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit --configfile pyproject.toml --quiet --recursive $(SHIPPED_CODE)
	DJANGO_SECRET_KEY=lint DJANGO_ALLOW_NO_DATABASE=1 $(BIN)/python manage.py makemigrations --check --dry-run

bench: install ## Production-configuration reads, peer caches, more rows, Lambda cost (needs wrk; about 25 min)
	@command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; \
		$(APT_INSTALL) wrk >/dev/null; }
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m bench.run
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m bench.peers
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m bench.rows
	$(BIN)/python bench/lambda_cost.py

.PHONY: bench-growth
bench-growth: install ## Read and list cost at 10k, 100k and 1M rows, and a plot (needs wrk)
	@command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; \
		$(APT_INSTALL) wrk >/dev/null; }
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m bench.growth

bench-cpu: install ## CPU per request of a cache hit, layer by layer (after make bench)
	$(BIN)/python bench/hit_path_cpu.py

bench-instructions: install ## Instructions per request under callgrind, repeatable (after make bench)
	@command -v valgrind >/dev/null || { echo "installing valgrind (Debian package)"; \
		$(APT_INSTALL) valgrind >/dev/null; }
	$(BIN)/python bench/instructions.py

# Each drill runs its own PostgreSQL (initdb; as root, as the postgres user) and Redis.
drills: install ## Outage drills against own PostgreSQL and Redis on spare ports (a few minutes)
	$(BIN)/python -m bench.drills $(if $(filter short,$(DRILLS)),--short) $(DRILLS_ARGS)

soak: install ## 10-minute mixed load recording memory, connections and p99 every minute
	SOAK_MINUTES=$(SOAK_MINUTES) $(BIN)/python -m bench.soak

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

upgrade-check: install ## List the pinned packages that have newer releases
	$(BIN)/pip list --outdated

clean: ## Remove the virtual environments, caches, infra/cdk.out and the local SQLite database
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles db.sqlite3

# --- Browser tests ----------------------------------------------------------------
.PHONY: screenshots

screenshots: install ## Retake docs/screenshots/ (admin, Swagger UI) with the browser tests
	SCREENSHOTS_DIR=docs/screenshots \
		DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/pytest tests/browser -m browser $(PYTEST_ARGS)

# --- AWS Copilot deploy: offline validation --------------------------------------
# checkov lives in its own virtualenv (see requirements-checkov.txt); `make test` installs it
# so tests/test_copilot_addons.py can scan the addon templates with --skip-download.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cat requirements-checkov.txt | cksum | cut -d' ' -f1)
.PHONY: install-checkov clean-checkov

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	rm -f $(CHECKOV_VENV)/.installed-* && touch $@

install-checkov: $(CHECKOV_STAMP) ## Create .venv-checkov with the pinned checkov (used by make test)

test: install-checkov

clean: clean-checkov

clean-checkov:
	rm -rf $(CHECKOV_VENV)

# --- AWS CDK application (infra/): synthesized and checked offline ------------------
# aws-cdk-lib runs on Node.js through jsii, in its own virtualenv (infra/requirements.txt).
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed-$(shell cat infra/requirements.txt | cksum | cut -d' ' -f1)
# jsii's banner about an old Node.js release (20 is past its end of life) says nothing about
# the templates; the README says which Node.js to install.
INFRA_ENV := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
CDK_STACKS := test-fargate test-lambda prod-fargate prod-lambda
.PHONY: install-infra synth test-infra schema clean-infra

$(INFRA_STAMP): infra/requirements.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/pip install --quiet -r infra/requirements.txt
	rm -f $(INFRA_VENV)/.installed-* && touch $@

install-infra: $(INFRA_STAMP) ## Create .venv-infra with the CDK app's pinned requirements

synth: install-infra ## Synthesize the CDK app (both environments, both tiers) into infra/cdk.out/
	@for stack in $(CDK_STACKS); do \
		echo "synthesizing $$stack into infra/cdk.out/$$stack"; \
		environment=$${stack%-*}; tier=$${stack#*-}; \
		(cd infra && $(INFRA_ENV) CDK_OUTDIR=cdk.out/$$stack \
			CDK_CONTEXT_JSON="{\"environment\": \"$$environment\", \"tier\": \"$$tier\"}" \
			../$(INFRA_VENV)/bin/python app.py) || exit 1; \
	done

test-infra: install-infra install-checkov ## The CDK app's tests: assertions, cdk-nag, cfn-lint, checkov
	cd infra && $(INFRA_ENV) ../$(INFRA_VENV)/bin/pytest $(INFRA_PYTEST_ARGS)

schema: install ## Rewrite docs/openapi.yaml, the API description the CDK app routes from
	DJANGO_SECRET_KEY=schema DJANGO_ALLOW_NO_DATABASE=1 \
		$(BIN)/python manage.py spectacular --validate --file docs/openapi.yaml

test: test-infra

clean: clean-infra

clean-infra:
	rm -rf $(INFRA_VENV) infra/cdk.out
