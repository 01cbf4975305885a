# inferload: `make demo` does all set-up and runs the main job; `make test` runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.inferload-installed

.PHONY: setup demo test check protos clean-results

setup: $(STAMP) protos

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python 3.11"; exit 1; }
	@command -v java >/dev/null || echo "warning: java not found: TorchServe needs Java 17 (apt-get install openjdk-17-jre-headless)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@# docker-compose 1.29 (Debian) validates docker-compose.yml without an engine; tests use it when present.
	@command -v docker-compose >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null) || \
		echo "note: docker-compose not installed; its validation test will be skipped"; }
	@# nginx (Debian package): the balancer and cache in front of server replicas (serving/balancer.py);
	@# its JavaScript module (libnginx-mod-http-js) hashes request bodies into the cache key.
	@{ { command -v nginx >/dev/null || test -x /usr/sbin/nginx; } && test -f /usr/lib/nginx/modules/ngx_http_js_module.so; } || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-http-js >/dev/null) || \
		echo "note: nginx not installed (apt-get install nginx libnginx-mod-http-js): replica and cache experiments and their tests need it"; }
	touch $(STAMP)

protos: $(STAMP)
	$(PY) -m inferload_protos

demo: setup
	$(VENV)/bin/inferload demo

test: setup
	$(PY) -m pytest

# ruff, mypy, and DESIGN.md section 8's import rules (import-linter, [tool.importlinter] in pyproject.toml)
check: setup
	$(VENV)/bin/ruff check models serving loadtest analysis inferload inferload_formats inferload_protos tests benchmarks
	$(VENV)/bin/mypy models serving loadtest analysis inferload inferload_formats
	$(VENV)/bin/lint-imports
