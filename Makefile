# inferload: `make demo` does all set-up and runs the main job; `make test` runs the tests
# (`make test-fast`: the inner loop, no server starts).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.inferload-installed

.PHONY: setup demo test test-fast check protos clean-results

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
	@# headless Chromium: the report's layout check takes a screenshot of report.html (tests/analysis).
	@{ command -v chromium >/dev/null || command -v chromium-browser >/dev/null; } || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "note: chromium not installed (apt-get install chromium): the report screenshot test needs it"; }
	@# iptables (Debian package): tests/faults drop packets inside a network namespace (tc is iproute2's).
	@{ command -v iptables >/dev/null || test -x /usr/sbin/iptables; } || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null) || \
		echo "note: iptables not installed (apt-get install iptables): the packet-loss tests need it"; }
	@# Triton (serving/triton_install.py): the nvidia-pytriton wheel's tritonserver (--no-deps: its client
	@# library pins numpy<2), the model's own NumPy-1 environment and perf_analyzer (benchmarks only).
	$(PY) -m serving.triton_install
	touch $(STAMP)

protos: $(STAMP)
	$(PY) -m inferload_protos

demo: setup
	$(VENV)/bin/inferload demo

# The lanes (tests/lanes.py), all at once. On TEST_WORKERS pytest-xdist workers, every test that may share
# the machine: the ones without servers one by one, each area's server tests together on one worker (its
# hosts start once), those first. Beside them, in a pytest of its own, the modules that import Locust
# in-process (gevent's patching deadlocks an xdist worker). Both run as idle work (tests/idle_lane.py: an
# idle cpu cgroup and SCHED_IDLE; SCHED_IDLE alone yields only inside its session, and the servers they
# start have sessions of their own): they take only the CPU time nothing else wants. The tests marked
# `alone` (they measure the machine or keep a schedule) run meanwhile, one by one, at normal priority:
# the house rule for measuring beside other work, and the machine watch leaves idle work out of its
# "other processes" figure. The smoke chain whose report CI checks strictly runs there too: beside the
# lanes under SCHED_IDLE only, its generator fell behind in all 9 cells (lateness p99 10-27 ms); beside
# them in their idle cgroup, 0.05-1.38 ms over 36 cells (README). The workers' output shows as they go;
# the others' follows it.
FAST_LANE = not servers and not slow
# The workers' lane alone on a clean clone (the earlier VM, 2 cores): 454 s on 2 workers, 370 s on 3
# (the CPU ~88 % busy), 352 s on 4; the lane waits on servers and timeouts a third of the time at 2.
TEST_WORKERS ?= 3
# $(call lanes,ON_WORKERS,BESIDE,ALONE,DIST): the tests each marker expression selects (ALONE may be
# empty: none). Where no idle cgroup can be made (not root, no cpu controller: tests/idle_lane.py says
# so), the ALONE lane waits until the others have ended. Every lane runs to its end even when another
# fails; the exit status is the first failure's (pytest's 5, no test collected, is a failure too).
lanes = workers=0; beside=0; alone=0; logs=$$(mktemp -d); idle="$(PY) tests/idle_lane.py"; \
	beside_them=1; $(if $(3),$$idle --check || { beside_them=0; echo "note: the alone lane runs after the others"; };) \
	$$idle $(PY) -m pytest --off-workers -p no:cacheprovider -m "$(2)" >$$logs/beside 2>&1 & b=$$!; \
	alone_lane() { $(PY) -m pytest --off-workers -p no:cacheprovider -m "$(3)" >$$logs/alone 2>&1 & a=$$!; }; \
	$(if $(3),[ $$beside_them = 0 ] || alone_lane;) \
	trap 'kill $$b $(if $(3),$${a:-}) 2>/dev/null; rm -rf $$logs' EXIT; \
	$$idle $(PY) -m pytest -n $(TEST_WORKERS) --dist $(4) -m "$(1)" || workers=$$?; \
	wait $$b || beside=$$?; echo "=== beside the workers ($(2)):"; cat $$logs/beside; \
	$(if $(3),[ $$beside_them = 1 ] || alone_lane; wait $$a || alone=$$?; \
	echo "=== alone at normal priority ($(3)):"; cat $$logs/alone;) \
	for rc in $$workers $$beside $$alone; do [ $$rc -eq 0 ] || exit $$rc; done

test: setup
	@$(call lanes,not alone,locust_in_process and not alone,alone,loadgroup)

# The inner loop: no server starts, no test over ~20 s (markers checked by tests/lanes.py). No hosts to
# share, so the tests spread one by one (--dist load; 61-69 s on a clean clone here, two runs).
test-fast: setup
	@$(call lanes,$(FAST_LANE) and not alone,($(FAST_LANE)) and locust_in_process,,load)

# ruff, mypy, and DESIGN.md section 8's import rules (import-linter, [tool.importlinter] in pyproject.toml)
check: setup
	$(VENV)/bin/ruff check models serving loadtest analysis inferload inferload_formats inferload_protos tests benchmarks
	$(VENV)/bin/mypy models serving loadtest analysis inferload inferload_formats
	$(VENV)/bin/lint-imports
