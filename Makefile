# privwatch — every command a user or CI needs. `make demo` and `make test` set up everything
# they need on a fresh machine (Python tools pinned in .venv/, Rust from the machine's rustup).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
TOOLS_STAMP := $(VENV)/.installed-$(shell sha1sum requirements-dev.txt | cut -c1-12)
# The venv first: cargo-lambda finds zig through the python3 on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

ACCOUNT ?= example
ORG ?= example
EVENT ?= fixtures/root-signin-success-mfa.json

.PHONY: demo test sandbox watch invoke tools lint unit build zip bench deploy destroy redrive clean rules deploy-org destroy-org smoke

## demo: run privwatch locally on every fixture and print the Slack channel it produced
demo: tools
	scripts/demo.sh

## test: everything CI checks (format, lint, unit, integration with moto, infra, browser)
test: tools lint
	scripts/with-moto.sh cargo test --workspace
	scripts/test-infra.sh
	scripts/browser-test.sh

## sandbox: the demo, leaving the Slack sandbox page open at http://127.0.0.1:3030/
sandbox: tools
	KEEP_OPEN=1 scripts/demo.sh

## watch: cargo lambda watch against a running `make sandbox` (the everyday loop)
watch: tools
	cargo lambda watch -A 127.0.0.1 -P 9000 \
	  --env-var SLACK_CHANNEL_ID=C0PRIVWATCH \
	  --env-var SLACK_BOT_TOKEN=xoxb-sandbox-demo-token \
	  --env-var SLACK_API_URL=http://127.0.0.1:3030/api \
	  --env-var ACCOUNT_NAME=demo-prod

## invoke: send one event to `make watch` (EVENT=fixtures/<file>.json)
invoke: tools
	cargo lambda invoke privwatch --data-file $(EVENT) -A 127.0.0.1 -P 9000

tools: $(TOOLS_STAMP)
$(TOOLS_STAMP): requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	python3 scripts/modgraph.py

## unit: the inner loop — the pure modules' tests and the fast integration binary (tests/it), no
## Python, no moto (the tests that need moto say SKIPPED); `make test` runs everything
unit:
	cargo test --workspace --lib
	PRIVWATCH_PROPERTY_CASES=300 cargo test --test it

## rules: re-render infra/rules.json from the kinds declared in src/kind.rs (a unit test fails while it is stale)
rules:
	cargo run --quiet --bin privwatch -- rules > infra/rules.json

## zip: the arm64 Lambda artefact infra deploys (target/lambda/arm64/privwatch/bootstrap.zip)
zip: tools
	rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --release --arm64 --bin privwatch --output-format zip --lambda-dir target/lambda/arm64

bench: tools zip
	scripts/bench.sh

deploy: tools zip
	scripts/deploy.sh deploy $(ACCOUNT)

destroy: tools
	scripts/deploy.sh destroy $(ACCOUNT)

## deploy-org: organization mode from infra/orgs/$(ORG).env: the hub, a service-managed StackSet of spokes, the management account's spokes
deploy-org: tools zip
	scripts/deploy-org.sh deploy $(ORG)

destroy-org: tools
	scripts/deploy-org.sh destroy $(ORG)

## smoke: after a deploy, checks the real account (ACCOUNT=…) or organization (ORG=…) and Slack end to end; read-only but one test notice
smoke: tools
ifeq ($(origin ORG),command line)
	python3 scripts/smoke.py org $(ORG)
else
	python3 scripts/smoke.py account $(ACCOUNT)
endif

redrive: tools
	scripts/deploy.sh redrive $(ACCOUNT)

clean:
	cargo clean
	rm -rf $(VENV)
