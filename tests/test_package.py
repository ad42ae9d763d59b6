"""Package layout, class table and dependency guards."""

from __future__ import annotations

import subprocess
import sys

import pytest

import hdmap
from hdmap import _deps, errors
from hdmap.classes import CLASS_TABLE, Class, class_names


def test_kernels_and_pipelines_install_inside_hdmap_only(tmp_path):
    code = (
        "import importlib.util as u, hdmap.kernels, hdmap.pipelines;"
        "print(u.find_spec('kernels'), u.find_spec('pipelines'), hdmap.kernels.__name__, hdmap.pipelines.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert out.split() == ["None", "None", "hdmap.kernels", "hdmap.pipelines"]


def test_import_hdmap_is_light(tmp_path):
    """import hdmap must not pull in Open3D, matplotlib or dask (slow, and Open3D needs libusb)."""
    code = "import sys, hdmap; print(sorted(m for m in ('open3d', 'matplotlib', 'dask', 'distributed') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_kernel_threads_wait_passively_unless_the_user_says_otherwise(tmp_path, given, expected):
    """OpenMP reads OMP_WAIT_POLICY once, when Numba starts its pool: hdmap.kernels sets it first."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, hdmap.kernels.grid; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         check=True).stdout
    assert out.strip() == expected


def test_class_codes_are_the_design_table():
    expected = {1: "unclassified", 2: "ground", 3: "low_vegetation", 4: "medium_vegetation", 5: "high_vegetation",
                6: "building", 7: "low_noise", 11: "road_surface", 18: "high_noise", 64: "road_marking", 65: "pole",
                66: "traffic_sign", 67: "curb"}
    names = class_names()
    for code, name in expected.items():
        assert names[code] == name
        assert Class.from_name(name) == code
    assert set(CLASS_TABLE) == set(Class)
    with pytest.raises(ValueError, match="unknown class name 'roads'"):
        Class.from_name("roads")


def test_public_api():
    for name in hdmap.__all__:
        assert hasattr(hdmap, name), name


def test_open3d_guard_names_libusb(monkeypatch):
    def fake_import(name):
        raise ImportError("libusb-1.0.so.0: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(_deps.importlib, "import_module", fake_import)
    with pytest.raises(errors.MissingDependencyError, match=r"libusb-1\.0.*apt-get install libusb-1\.0-0"):
        _deps.require_open3d()


def test_open3d_imports_here():
    o3d = _deps.require_open3d()
    assert hasattr(o3d, "geometry")


def test_pdal_guard():
    try:
        import pdal  # noqa: F401
    except ImportError:
        with pytest.raises(errors.MissingDependencyError, match="optional extra.*hdmap\\[pdal\\]"):
            _deps.require_pdal()
    else:  # pragma: no cover - PDAL cannot be installed on Debian 12 from the registries
        pytest.skip("PDAL is installed here; the guard is not exercised")
