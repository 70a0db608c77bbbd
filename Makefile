# Two commands do everything on a fresh machine:
#   make run    install what the app needs (EGL for headless MuJoCo rendering included), then
#               start it on http://127.0.0.1:8501
#   make test   install what the tests need (Chromium and EGL included), then run the whole suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501

.PHONY: run test lint bench chromium egl

$(VENV)/.app-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.app-installed requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.app-installed egl
	$(PY) -m streamlit run app.py --server.port $(PORT)

chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null)

# "Watch it play" renders MuJoCo offscreen through EGL (MUJOCO_GL=egl, core/config/environments.py)
egl:
	@dpkg -s libegl1 libegl-mesa0 >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq libegl1 libegl-mesa0 >/dev/null)

test: $(VENV)/.dev-installed chromium egl
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
