"""Build steps pyproject.toml cannot say (the metadata is all in pyproject.toml).

1. driver-view.schema.json is installed next to the modules. setuptools' package data belongs to
   packages, and these are top-level modules, so build_py copies the schema into the build root
   itself, where the wheel puts it beside messaging_driver.py.
2. Offline builds. setuptools before 70.1 makes wheels with the separate `wheel` package, which
   Python 3.11's venv does not have (it has setuptools 65 and pip). When neither setuptools nor
   `wheel` provides `bdist_wheel`, a small one below builds this pure-Python wheel with the
   standard library, so `pip install --no-build-isolation --no-index ./drivers/python` works in
   a fresh venv with no registry at all. With a registry (build isolation), pip brings a
   setuptools that has its own bdist_wheel and this one is not used.
"""

import base64
import csv
import hashlib
import io
import os
import shutil
import zipfile

from setuptools import Command, setup
from setuptools.command.build_py import build_py

SCHEMA = "driver-view.schema.json"
HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPyWithSchema(build_py):
    def run(self):
        super().run()
        source = os.path.join(HERE, SCHEMA)
        if not os.path.isfile(source):
            raise SystemExit(f"{source} is missing: copy schemas/conformance/{SCHEMA} there")
        os.makedirs(self.build_lib, exist_ok=True)
        shutil.copyfile(source, os.path.join(self.build_lib, SCHEMA))

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, SCHEMA)]


def _has_bdist_wheel():
    try:
        import setuptools.command.bdist_wheel  # noqa: F401  (setuptools >= 70.1)
        return True
    except ImportError:
        pass
    try:
        import wheel.bdist_wheel  # noqa: F401
        return True
    except ImportError:
        return False


class MinimalBdistWheel(Command):
    """A py3-none-any wheel of this project, with the standard library only."""

    description = "build a pure-Python wheel (used when the `wheel` package is absent)"
    user_options = [("dist-dir=", "d", "directory for the wheel")]

    def initialize_options(self):
        self.dist_dir = None

    def finalize_options(self):
        self.dist_dir = self.dist_dir or "dist"

    # setuptools' dist_info command calls this to turn egg-info into dist-info.
    def egg2dist(self, egginfo_path, distinfo_path):
        os.makedirs(distinfo_path, exist_ok=True)
        shutil.copyfile(os.path.join(egginfo_path, "PKG-INFO"), os.path.join(distinfo_path, "METADATA"))
        for name in ("entry_points.txt", "top_level.txt"):
            path = os.path.join(egginfo_path, name)
            if os.path.isfile(path):
                shutil.copyfile(path, os.path.join(distinfo_path, name))

    def run(self):
        build = self.get_finalized_command("build_py")
        build.run()
        egg_info = self.get_finalized_command("egg_info")
        egg_info.run()
        name = self.distribution.get_name().replace("-", "_")
        version = self.distribution.get_version()
        dist_info = f"{name}-{version}.dist-info"
        files = {}
        for root, _, names in os.walk(build.build_lib):
            for n in names:
                if n.endswith((".pyc", ".pyo")):
                    continue
                path = os.path.join(root, n)
                with open(path, "rb") as f:
                    files[os.path.relpath(path, build.build_lib).replace(os.sep, "/")] = f.read()
        staging = os.path.join(self.dist_dir, "_dist_info")
        self.egg2dist(egg_info.egg_info, staging)
        for n in sorted(os.listdir(staging)):
            with open(os.path.join(staging, n), "rb") as f:
                files[f"{dist_info}/{n}"] = f.read()
        shutil.rmtree(staging)
        files[f"{dist_info}/WHEEL"] = (
            "Wheel-Version: 1.0\nGenerator: messaging-mock-driver setup.py\n"
            "Root-Is-Purelib: true\nTag: py3-none-any\n"
        ).encode()
        record = io.StringIO()
        writer = csv.writer(record, lineterminator="\n")
        for path, data in files.items():
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            writer.writerow([path, f"sha256={digest}", len(data)])
        writer.writerow([f"{dist_info}/RECORD", "", ""])
        files[f"{dist_info}/RECORD"] = record.getvalue().encode()
        os.makedirs(self.dist_dir, exist_ok=True)
        target = os.path.join(self.dist_dir, f"{name}-{version}-py3-none-any.whl")
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as whl:
            for path, data in files.items():
                whl.writestr(path, data)


commands = {"build_py": BuildPyWithSchema}
if not _has_bdist_wheel():
    commands["bdist_wheel"] = MinimalBdistWheel

setup(cmdclass=commands)
