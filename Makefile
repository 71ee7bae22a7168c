# Two commands matter: `make run` and `make test`. `make help` lists the rest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

# make test talks to real servers; override either to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/items
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.DEFAULT_GOAL := help
.PHONY: help install run test lint format bench bench-cpu bench-instructions upgrade-check clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv and install the pinned requirements

run: install ## Serve the API on http://127.0.0.1:8000 (SQLite + in-process cache unless configured)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-dev-only-secret-key} \
		$(BIN)/python manage.py migrate --noinput
	@echo ""
	@echo "  API       http://127.0.0.1:8000/api/items/"
	@echo "  Docs      http://127.0.0.1:8000/api/docs/  (Redoc: /api/redoc/, schema: /api/schema/)"
	@echo "  Admin     http://127.0.0.1:8000/admin/  (create a user: $(BIN)/python manage.py createsuperuser)"
	@echo ""
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-dev-only-secret-key} \
		$(BIN)/python manage.py runserver 127.0.0.1:8000

test: install lint ## Run the whole suite against PostgreSQL and Redis
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff lint and format check, and no missing migration
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_SECRET_KEY=lint $(BIN)/python manage.py makemigrations --check --dry-run

bench: install ## Cached vs uncached reads vs the framework floor (needs wrk); Lambda cold and warm cost
	@command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; \
		apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python bench/run.py
	$(BIN)/python bench/lambda_cost.py

bench-cpu: install ## CPU per request of a cache hit, layer by layer (after make bench)
	$(BIN)/python bench/hit_path_cpu.py

bench-instructions: install ## Instructions per request under callgrind, repeatable (after make bench)
	@command -v valgrind >/dev/null || { echo "installing valgrind (Debian package)"; \
		apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
	$(BIN)/python bench/instructions.py

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

upgrade-check: install ## List the pinned packages that have newer releases
	$(BIN)/pip list --outdated

clean: ## Remove the virtual environment, caches and the local SQLite database
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
