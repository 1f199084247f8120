# Attention Lab. `make run` serves the app; `make test` runs every test. Both start from nothing.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
REDIS_URL ?= redis://127.0.0.1:6379/0
export REDIS_URL

.PHONY: run test lint bench bench-forward bench-e2e bench-load bench-burst bench-healthz bench-gpt bench-model-view bench-soak screenshots messages train-gpt reference-roles clean

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "Installing the pinned dependencies into $(VENV) (a few minutes the first time)..."
	$(PY) -m pip install --progress-bar on -r requirements-dev.txt -c constraints.txt
	touch $@

locale/ja/LC_MESSAGES/django.mo: locale/ja/LC_MESSAGES/django.po $(VENV)/.installed /usr/bin/msgfmt
	$(PY) manage.py compilemessages --ignore=.venv -v0

# System packages, installed when missing: GNU gettext compiles the translations, and Debian's
# Chromium runs the browser tests (Playwright cannot download a browser on this network).
/usr/bin/msgfmt:
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext) \
	  || { echo "Install GNU gettext (msgfmt) to compile the translations."; exit 1; }

run: $(VENV)/.installed locale/ja/LC_MESSAGES/django.mo
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py load_content
	$(PY) manage.py runall

/usr/bin/chromium:
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  || { echo "Install Debian's chromium package to run the browser tests."; exit 1; }

# Japanese glyphs for the browser tests' screenshots.
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
$(CJK_FONT):
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk) \
	  || { echo "Install fonts-noto-cjk for Japanese text in screenshots."; exit 1; }

test: $(VENV)/.installed locale/ja/LC_MESSAGES/django.mo /usr/bin/chromium $(CJK_FONT)
	$(PY) -m engine.redis_server ensure $(REDIS_URL)
	$(PY) manage.py check --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run --no-input -v1
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Style, and the architecture contracts in .importlinter (apps depend one way, no cycles).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

messages: $(VENV)/.installed
	$(PY) manage.py makemessages -l ja --ignore=.venv --no-obsolete

# Retrain the small GPT on the lessons (about 15 minutes on 2 CPU threads) and rewrite the
# committed checkpoint in engine/checkpoints/gpt/ (weights, tokenizer, training.json, loss.svg,
# MODEL_CARD.md). Seeded: the same lessons give the same model on the same machine.
train-gpt: $(VENV)/.installed
	$(PY) -m engine.transformer.train_gpt

# Every head's role on the fixed reference sentences (both models, on the CPU, a few seconds):
# rewrites engine/reference/head_roles.json, which tests/engine/test_reference_roles.py checks.
reference-roles: $(VENV)/.installed
	$(PY) -m engine.transformer.reference_roles

bench: bench-forward bench-gpt bench-e2e bench-burst bench-load bench-healthz bench-model-view

bench-forward: $(VENV)/.installed
	$(PY) bench/bench_forward.py

bench-e2e: $(VENV)/.installed
	$(PY) bench/bench_e2e.py

bench-load: $(VENV)/.installed
	$(PY) bench/bench_load.py

# 200 runs from 20 clients on two workers, micro-batching off (ENGINE_BATCH_MAX=1) and on, side by side.
bench-burst: $(VENV)/.installed
	$(PY) bench/bench_burst.py

bench-gpt: $(VENV)/.installed
	$(PY) bench/bench_gpt.py

bench-healthz: $(VENV)/.installed
	$(PY) bench/bench_healthz.py

bench-model-view: $(VENV)/.installed
	$(PY) bench/bench_model_view.py

# 10 minutes of pages and runs with workers killed and Redis restarted (not in `bench`).
bench-soak: $(VENV)/.installed
	$(PY) bench/bench_soak.py

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache db.sqlite3 .run
