# Every target installs into .venv on first use; nothing is installed system-wide.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: run test lint bench ui migrate sandbox clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

UI_URL := http://127.0.0.1:4200

run: $(STAMP) ## the demo campaign on the embedded defaults (reported to `make ui` when it runs)
	@if [ -z "$$PREFECT_API_URL" ] && $(BIN)/python -c "import urllib.request as u; \
	    u.urlopen('$(UI_URL)/api/health', timeout=1)" 2>/dev/null; then \
	  echo "Reporting to the Prefect server at $(UI_URL) (make ui)"; \
	  export PREFECT_API_URL=$(UI_URL)/api; fi; \
	$(BIN)/python -m flows.broadcast --params deployments/demo-campaign.json

test: $(STAMP) ## the whole suite
	$(BIN)/pytest

lint: $(STAMP) ## ruff + mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP) ## benchmarks against their targets
	$(BIN)/python -m bench

ui: $(STAMP) ## a local Prefect server with its UI at http://127.0.0.1:4200
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

migrate: $(STAMP) ## bring WAREHOUSE_DATABASE_URL (default: .data/warehouse.sqlite) to the newest schema
	$(BIN)/python -m connectors.warehouse migrate

sandbox: $(STAMP) ## the WhatsApp API sandbox on port 8080
	$(BIN)/python -m connectors.whatsapp.sandbox --port 8080

clean: ## forget the demo data and local Prefect state
	rm -rf .data .prefect
