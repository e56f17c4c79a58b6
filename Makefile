# Every target installs into .venv on first use; nothing is installed system-wide.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

.PHONY: run report test lint bench ui deploy worker serve migrate sandbox receiver clean

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

CAMPAIGN ?= demo-order-update
report: $(STAMP) ## CAMPAIGN's one-file HTML report from the warehouse (default: the demo's)
	$(BIN)/python -m flows.report $(CAMPAIGN) --out $(CAMPAIGN).html

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

deploy: $(STAMP) ## create the process work pool and the deployments of prefect.yaml on `make ui`
	PREFECT_API_URL=$(UI_URL)/api $(BIN)/prefect work-pool create wa-process --type process --overwrite
	PWD=$(CURDIR) PREFECT_API_URL=$(UI_URL)/api $(BIN)/prefect --no-prompt deploy \
	  --prefect-file deployments/prefect.yaml --all

worker: $(STAMP) ## a process worker that runs the deployments' flow runs
	PREFECT_API_URL=$(UI_URL)/api $(BIN)/prefect worker start --pool wa-process

serve: $(STAMP) ## serve the broadcast flow from this process instead of a work pool
	PREFECT_API_URL=$(UI_URL)/api $(BIN)/python deployments/serve.py

migrate: $(STAMP) ## bring WAREHOUSE_DATABASE_URL (default: .data/warehouse.sqlite) to the newest schema
	$(BIN)/python -m connectors.warehouse migrate

API ?= $(or $(WHATSAPP_API),onprem)
sandbox: $(STAMP) ## the WhatsApp API sandbox on port 8080 (API=cloud for the Cloud API's)
	$(BIN)/python -m connectors.whatsapp.sandbox --api $(API) --port 8080

receiver: $(STAMP) ## the webhook receiver on port 8090 (set WEBHOOK_TOKEN first)
	$(BIN)/python -m connectors.webhooks --port 8090

clean: ## forget the demo data and local Prefect state
	rm -rf .data .prefect
