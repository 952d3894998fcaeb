"""The package's import contracts (pyproject.toml, [tool.importlinter]): `lint-imports` keeps
them all, and fails a contract when a module that breaks it is added to a copy of the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
LINT_IMPORTS = shutil.which("lint-imports", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
# contract id -> (a module added to the copy, the import in it that breaks the contract)
BREAKERS = {
    "torch-free": ("rtmri/bundle/breaker.py", "import torch"),
    "streamer-without-lessons": ("rtmri/streamer/server/breaker.py", "from rtmri.lessons import compare"),
    "serving-without-synth": ("rtmri/lessons/breaker.py", "from rtmri.synth import vtl"),
    "serving-without-lesson-synthesis": ("rtmri/lessons/breaker.py", "from rtmri.lessons import make"),
}

pytestmark = pytest.mark.skipif(LINT_IMPORTS is None, reason="needs import-linter (the test extra)")


def lint_imports(root: Path, *args: str) -> subprocess.CompletedProcess:
    """lint-imports on the rtmri package under root, with root's pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root)}  # root's rtmri, not the installed one
    return subprocess.run([LINT_IMPORTS, "--no-cache", "--no-logo", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


def python_files_only(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or (Path(folder, n).is_file() and not n.endswith(".py"))]


def test_the_package_keeps_its_import_contracts():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("contract", sorted(BREAKERS))
def test_a_module_that_breaks_a_contract_fails_it(tmp_path, contract):
    path, line = BREAKERS[contract]
    shutil.copytree(ROOT / "rtmri", tmp_path / "rtmri", ignore=python_files_only)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / path).write_text(line + "\n")
    result = lint_imports(tmp_path, "--contract", contract)
    breaker = path.removesuffix(".py").replace("/", ".")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout and f"-   {breaker} -> " in result.stdout, result.stdout
