"""Every module test runs under both runners: ``bin/test`` (pytest collects ``addons/*/tests/test_*.py``)
and ``odoo-bin --test-enable`` (Odoo runs what each ``tests/__init__.py`` imports, what integrators
and OCA CI run). A test file missing from its ``__init__.py`` would silently not run under Odoo."""

import ast
import pathlib

ADDONS = pathlib.Path(__file__).resolve().parent.parent / "addons"


def _imported(init):
    names = set()
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module:
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            names.add(node.module.split(".")[0])
    return names


def test_every_test_file_is_imported_by_its_tests_package():
    folders = sorted(ADDONS.glob("*/tests"))
    assert len(folders) >= 6, "the modules' test folders are found"
    for folder in folders:
        files = {path.stem for path in folder.glob("test_*.py")}
        imported = {name for name in _imported(folder / "__init__.py") if name.startswith("test_")}
        assert files, "%s has test files" % folder
        assert files - imported == set(), "%s: not imported, skipped by odoo-bin --test-enable" % folder
        assert imported - files == set(), "%s: imports test modules that do not exist" % folder


def test_the_check_reads_imports_as_odoo_does(tmp_path):
    (tmp_path / "__init__.py").write_text("from . import test_a\nfrom . import test_b, common\n")
    assert _imported(tmp_path / "__init__.py") == {"test_a", "test_b", "common"}
