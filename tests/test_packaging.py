"""pyproject.toml: a wheel holds the single module and the `minirouter` console script."""
from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

import minirouter  # noqa: E402


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy of the three files a release needs, so the checkout gets no build/ or egg-info.
    source = tmp_path_factory.mktemp("source")
    for name in ("minirouter.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", ".", "-w", str(out)],
                            cwd=source, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    [built] = out.glob("minirouter-*.whl")
    return built


def test_sdist_holds_the_module_and_no_tests(tmp_path: Path) -> None:
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 61:  # pyproject.toml's build-system asks for 61
        pytest.skip(f"setuptools {setuptools.__version__} cannot read pyproject.toml's [project]")
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", "*.db", "uploads", "build", "*.egg-info", ".*_cache", ".hypothesis"))
    out = tmp_path / "dist"
    build = "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", build, str(out)], cwd=source,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    import tarfile

    [built] = out.glob("minirouter-*.tar.gz")
    with tarfile.open(built) as archive:
        names = sorted(name.split("/", 1)[1] for name in archive.getnames() if "/" in name)
    assert "minirouter.py" in names and "pyproject.toml" in names and "README.md" in names
    assert not [name for name in names if name.startswith(("tests", "app/", "bench/"))], names


def dist_info_file(names: list[str], wheel_file: zipfile.ZipFile, name: str) -> str:
    [path] = [n for n in names if n.endswith(f".dist-info/{name}")]
    return wheel_file.read(path).decode("utf-8")


def test_wheel_holds_only_the_module(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as wheel_file:
        names = wheel_file.namelist()
        assert [n for n in names if ".dist-info/" not in n] == ["minirouter.py"]
        assert wheel_file.read("minirouter.py") == (ROOT / "minirouter.py").read_bytes()


def test_wheel_metadata(wheel: Path) -> None:
    assert wheel.name == f"minirouter-{minirouter.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as wheel_file:
        names = wheel_file.namelist()
        metadata = email.parser.Parser().parsestr(dist_info_file(names, wheel_file, "METADATA"))
        entry_points = dist_info_file(names, wheel_file, "entry_points.txt")
    assert metadata["Name"] == "minirouter"
    assert metadata["Version"] == minirouter.__version__
    assert metadata["Requires-Python"] == ">=3.9"
    assert metadata.get_all("Requires-Dist") is None  # no dependencies at all
    assert "[console_scripts]" in entry_points
    assert "minirouter = minirouter:main" in entry_points


def test_installed_wheel_gives_a_working_command(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)  # this pip installs into it (--python): faster than ensurepip
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", "--quiet", str(wheel)],
                             capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stderr
    # Run from an empty folder, so the module comes from the installed wheel, not the checkout.
    workdir = tmp_path / "elsewhere"
    (workdir / "app" / "hello").mkdir(parents=True)
    (workdir / "app" / "hello" / "route.py").write_text("def GET():\n    return {}\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    version = subprocess.run([str(bin_dir / "minirouter"), "--version"], cwd=workdir, env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert version.stdout.strip() == f"minirouter {minirouter.__version__}", version.stderr
    routes = subprocess.run([str(bin_dir / "minirouter"), "routes"], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert routes.returncode == 0, routes.stderr
    assert routes.stdout.startswith("/hello ")
    where = subprocess.run([str(python), "-c", "import minirouter; print(minirouter.__file__)"], cwd=workdir,
                           env=env, capture_output=True, text=True, timeout=60, check=False)
    assert "site-packages" in where.stdout
