# Build, test and CI entry points for the mailops.tls collection.
# `make test` does all set-up itself on a machine that has only Python 3 (see .ci/run).
# Helper scripts live in tests/tools/.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON      ?= python3
VENV        := .venv
VENV_OLDEST := .venv-oldest
VENV_BENCH  := .venv-bench
VENV_RELEASE := .venv-release
BUILD       := build
# Same layout tests/conftest.py uses: build/collections/ansible_collections/mailops/tls -> this repo.
COLLECTIONS := $(CURDIR)/$(BUILD)/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/mailops/tls
SANITY_ROOT := $(BUILD)/sanity

STEP := bash tests/tools/step.sh

.PHONY: help venv venv-oldest bench-venv lint test-packages unit unit-oldest unit-distros sanity changelog-lint \
	integration test demo bench collection-link clean ansible-lint molecule clients release-venv release-check \
	release docsite differential mutation

help:
	@echo "targets: venv venv-oldest lint ansible-lint molecule test-packages unit unit-oldest unit-distros sanity"
	@echo "         changelog-lint integration release-check test demo bench clients docsite release"
	@echo "         differential mutation clean"
	@echo "  test = lint ansible-lint changelog-lint unit unit-oldest unit-distros sanity integration molecule"
	@echo "         release-check (what CI runs)"
	@echo "  release = docsite pages and CHANGELOG.rst for the version in galaxy.yml (see README: Releasing)"

venv:
	@$(STEP) "venv: $(VENV) from tests/requirements.txt" env PYTHON=$(PYTHON) \
		bash tests/tools/mkvenv.sh $(VENV) tests/requirements.txt

venv-oldest:
	@$(STEP) "venv-oldest: $(VENV_OLDEST) from tests/requirements-oldest.txt" env PYTHON=$(PYTHON) \
		bash tests/tools/mkvenv.sh $(VENV_OLDEST) tests/requirements-oldest.txt

lint: venv
	@$(STEP) "lint: ruff check plugins tests" $(VENV)/bin/ruff check plugins/ tests/

changelog-lint: venv
	@$(STEP) "changelog-lint: antsibull-changelog lint" bash -c \
		'$(VENV)/bin/antsibull-changelog lint && \
		 $(VENV)/bin/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml && echo "changelog ok"'

# The Debian packages the unit tests use (as root; tests/tools/test_packages.sh).
test-packages:
	@$(STEP) "test-packages: publicsuffix, openssl, ca-certificates" bash tests/tools/test_packages.sh

unit: venv test-packages
	@$(STEP) "unit: pytest tests/unit (newest cryptography)" \
		bash tests/tools/run_pytest.sh $(VENV)/bin/python tests/unit

unit-oldest: venv-oldest test-packages
	@$(STEP) "unit-oldest: pytest tests/unit/plugins/module_utils (oldest cryptography)" \
		bash tests/tools/run_pytest.sh $(VENV_OLDEST)/bin/python tests/unit/plugins/module_utils

# The module tests through Ansible on Debian 12's and Debian 13's own Python and cryptography (root: apt, chroot).
unit-distros: venv collection-link
	@$(STEP) "unit-distros: tests/unit/plugins/modules on Debian 12's and Debian 13's python3 and cryptography" \
		bash tests/tools/distros.sh $(VENV)

sanity: venv
	@$(STEP) "sanity: ansible-test sanity on a copy in $(SANITY_ROOT)" \
		bash tests/tools/sanity.sh $(VENV) $(SANITY_ROOT)

collection-link:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@if [ "$$(readlink $(COLLECTION_LINK) || true)" != "$(CURDIR)" ]; then \
		rm -rf $(COLLECTION_LINK); ln -s $(CURDIR) $(COLLECTION_LINK); fi

# Production profile, offline (.ansible-lint); the collection is found through build/collections, and
# ANSIBLE_HOME keeps ansible-lint's side effects (an empty collections dir) out of ~/.ansible.
ansible-lint: venv collection-link
	@$(STEP) "ansible-lint: production profile on roles playbooks extensions/molecule" env \
		ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) ANSIBLE_HOME=$(CURDIR)/$(BUILD)/ansible-home \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/ansible-lint --offline --profile production \
		roles/ playbooks/ extensions/molecule/ tests/demo/demo.yml

# The deploy role's molecule scenarios: default (this machine's daemons, the lab on 127.0.0.210-213) and trixie
# (the same playbooks on Debian 13's daemons, 127.0.0.230-233); no containers, no dependency step (no Galaxy).
# Needs root like the lab; about 3 minutes each.
molecule: venv collection-link
	@for scenario in default trixie; do \
		$(STEP) "molecule: molecule test --scenario-name $$scenario (the lab on loopback)" env \
		ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) ANSIBLE_HOME=$(CURDIR)/$(BUILD)/ansible-home \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/molecule test --scenario-name $$scenario || exit 1; done

integration: venv collection-link
	@$(STEP) "integration: tests/lab/install.sh (if present) and pytest tests/integration" \
		bash tests/tools/integration.sh $(VENV) $(COLLECTIONS)

# The tools a collection is checked with before it is published, apart from .venv (their own pins).
release-venv:
	@$(STEP) "release-venv: $(VENV_RELEASE) from tests/requirements-release.txt" env PYTHON=$(PYTHON) \
		bash tests/tools/mkvenv.sh $(VENV_RELEASE) tests/requirements-release.txt

# The tarball as users get it: no development files, antsibull-docs lint, galaxy-importer, ansible-builder.
release-check: release-venv
	@$(STEP) "release-check: build the tarball, check its contents, antsibull-docs, galaxy-importer, ansible-builder" \
		bash tests/tools/release_check.sh $(VENV_RELEASE) $(BUILD)/release

docsite:
	@$(STEP) "docsite: docs/docsite/rst from the Markdown guides in docs/" bash tests/tools/docsite.sh

# Regenerates the release named by galaxy.yml's version from every fragment, including fragments added
# after the release was first made (--update-existing, --refresh-fragments; fragments are kept).
release: venv docsite
	@$(STEP) "release: CHANGELOG.rst and changelogs/changelog.yaml for galaxy.yml's version" env \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/antsibull-changelog release --reload-plugins \
		--update-existing --refresh-fragments without-archives

test: lint ansible-lint changelog-lint unit unit-oldest unit-distros sanity integration molecule release-check
	@echo
	@echo "==== test: all steps passed ===="

demo: venv collection-link
	@$(STEP) "demo: lab up, deploy a messy pile with the deploy role, verify live, broken deploys, lab down" \
		bash tests/demo/demo.sh $(VENV) $(COLLECTIONS)

# The benchmark's own virtualenv: sslyze and community.crypto (from PyPI's ansible) at pinned versions.
bench-venv:
	@$(STEP) "bench-venv: $(VENV_BENCH) from tests/bench/requirements.txt" env PYTHON=$(PYTHON) \
		bash tests/tools/mkvenv.sh $(VENV_BENCH) tests/bench/requirements.txt

# Chain building against community.crypto, cryptography and openssl; live probes against sslyze and
# testssl.sh on the lab (as root); Ansible overhead. Prints the tables and writes docs/performance.md.
bench: venv bench-venv collection-link
	@$(STEP) "bench: tests/bench/bench.py (4-10 minutes)" env VENV=$(VENV) \
		$(VENV_BENCH)/bin/python tests/bench/bench.py --write docs/performance.md

# The client matrix (as root, 3-4 minutes): every mail client of tests/clients/clients.py against every chain of
# tests/clients/scenarios.py on a one-backend lab; writes docs/clients.md and plugins/module_utils/client_results.py.
clients: venv collection-link
	@$(STEP) "clients: tests/clients/matrix.py (every client against every scenario on the lab)" bash -c \
		'sh tests/lab/install.sh && sh tests/clients/install.sh && $(VENV)/bin/python tests/clients/matrix.py'

# Path validation against cryptography's verifier and openssl verify on thousands of random certificate graphs,
# with agreement counts per rule (make test runs a fixed seed of 300 in unit and unit-oldest). GRAPHS= and SEED= vary it.
GRAPHS ?= 3000
SEED ?= 13
differential: venv collection-link
	@$(STEP) "differential: $(GRAPHS) random certificate graphs, seed $(SEED) (tests/differential.py)" env \
		PYTHONPATH=$(COLLECTIONS):$(CURDIR)/tests $(VENV)/bin/python tests/differential.py --graphs $(GRAPHS) --seed $(SEED)

# Mutation testing of chain, pathrules, checks and names: every surviving mutant is killed by a test or listed with
# its reason in docs/validation.md. EVERY=n samples every n-th mutant; about 2 s per mutant and job (the full run of
# some 550 mutants takes about 15 minutes with one job).
EVERY ?= 1
mutation: venv
	@$(STEP) "mutation: tests/tools/mutation.py (every $(EVERY). mutant)" \
		$(VENV)/bin/python tests/tools/mutation.py --every $(EVERY)

clean:
	rm -rf $(VENV) $(VENV_OLDEST) $(VENV_RELEASE) $(BUILD) tests/output .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
