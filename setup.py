"""Build hook, so the wheel ships whole.

The project keeps `templates/` and `static/` at the top of the repository (the
layout DESIGN.md section 2 fixes), outside the `crewreport` package. A wheel
built from that alone would hold no pages, no crew app and no vendor bundles,
and the app would run only from a checkout. This build step copies both
folders into the built package (`crewreport/templates`, `crewreport/static`);
`create_app` uses those when they exist and the repository's otherwise, so an
editable install keeps serving the files being edited.

The metadata is in setup.cfg; this file only adds the command.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
ASSETS = ("templates", "static")
# Not needed at run time: esbuild's entry points and its "built" stamp.
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".built", "vendor-entries")
# Without these the crew app cannot seal a report: refuse to build a wheel that lacks them.
VENDOR_BUNDLES = ("static/vendor/hpke.js", "static/vendor/idb.js")


class BuildPyWithAssets(build_py):
    """build_py, then the repository's templates/ and static/ into the package."""

    def run(self) -> None:
        if self.editable_mode:  # an editable install serves the repository's own folders
            super().run()
            return
        # A reused build/ would otherwise ship modules since deleted from the tree.
        shutil.rmtree(Path(self.build_lib) / "crewreport", ignore_errors=True)
        super().run()
        missing = [name for name in VENDOR_BUNDLES if not (HERE / name).is_file()]
        if missing:
            raise SystemExit(f"{', '.join(missing)} missing: run `make setup` (npm ci && npm run build) "
                             "before building the wheel")
        package = Path(self.build_lib) / "crewreport"
        for name in ASSETS:
            target = package / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(HERE / name, target, ignore=SKIP)


setup(cmdclass={"build_py": BuildPyWithAssets})
