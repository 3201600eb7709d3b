"""pytest and odoo-bin run the same module tests.

pytest collects every ``addons/*/tests/test_*.py`` (``python_files`` in pytest.ini); odoo-bin
``--test-enable`` (what integrators and OCA CI run) runs only the modules that
``tests/__init__.py`` imports. A test file missing from ``__init__.py`` passes here and is
skipped there: this check fails loudly instead.
"""

import ast
import configparser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_FOLDERS = sorted(ROOT.glob("addons/*/tests"))


def _imported_modules(init_file):
    """Modules imported by ``from . import a, b`` lines of a package's ``__init__.py``."""
    names = set()
    for node in ast.parse(init_file.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module:
            names.update(alias.name for alias in node.names)
    return names


def test_pytest_collects_exactly_the_test_files_odoo_imports():
    pytest_ini = configparser.ConfigParser()
    pytest_ini.read(ROOT / "pytest.ini")
    assert pytest_ini["pytest"]["python_files"].split() == ["test_*.py"]


def test_every_module_has_test_folders():
    assert len(TEST_FOLDERS) == len(list(ROOT.glob("addons/*/__manifest__.py"))) == 15


@pytest.mark.parametrize("folder", TEST_FOLDERS, ids=[folder.parent.name for folder in TEST_FOLDERS])
def test_init_imports_every_test_file(folder):
    files = {path.stem for path in folder.glob("test_*.py")}
    imported = {name for name in _imported_modules(folder / "__init__.py") if name.startswith("test_")}
    assert files, "no test file in %s" % folder
    assert files - imported == set(), "%s/__init__.py does not import them: odoo-bin skips them" % folder
    assert imported - files == set(), "%s/__init__.py imports test modules that do not exist" % folder
