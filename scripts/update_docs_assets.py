"""Vendor the Swagger UI and ReDoc files that `/docs` and `/redoc` serve (app/docs/assets/).

The API docs must work in air-gapped clusters, so the browser may load nothing but scangate
itself. This script fetches the two npm packages with `npm pack` (the registry's signed
tarballs), copies only the files the pages need plus the licenses, applies the small patches in
`PATCHES` (each removes a request to the internet), and records versions, patches and sha256
sums in `manifest.json`; tests check the files against it. Run it to upgrade:

    python scripts/update_docs_assets.py [--swagger-ui VERSION] [--redoc VERSION]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "app" / "docs" / "assets"

# npm package -> {file in the package: name in app/docs/assets}
PACKAGES: dict[str, dict[str, str]] = {
    "swagger-ui-dist": {
        "swagger-ui-bundle.js": "swagger-ui-bundle.js",
        "swagger-ui.css": "swagger-ui.css",
        "favicon-32x32.png": "favicon-32x32.png",
        "LICENSE": "swagger-ui.LICENSE",
        "NOTICE": "swagger-ui.NOTICE",
        "swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
    },
    "redoc": {
        "bundles/redoc.standalone.js": "redoc.standalone.js",
        "LICENSE": "redoc.LICENSE",
        "bundles/redoc.standalone.js.LICENSE.txt": "redoc.standalone.js.LICENSE.txt",
    },
}


# (asset, original text, replacement, why). Each original must occur exactly once, so an
# upgrade that changes the code fails here instead of silently shipping the request again.
PATCHES: list[tuple[str, str, str, str]] = [
    (
        "redoc.standalone.js",
        'src:"https://cdn.redoc.ly/redoc/logo-mini.svg"',
        'src:"data:,"',
        "ReDoc 2 always loads its footer logo from cdn.redoc.ly; an empty data: image fails "
        "at once and ReDoc's onError hides it, so no request leaves the cluster",
    ),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def vendor(package: str, version: str, workdir: Path) -> dict[str, object]:
    out = subprocess.run(
        ["npm", "pack", "--json", f"{package}@{version}"],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    )
    (info,) = json.loads(out.stdout)
    with tarfile.open(workdir / info["filename"]) as tar:
        for source, target in PACKAGES[package].items():
            member = tar.extractfile(f"package/{source}")
            if member is None:
                raise SystemExit(f"{package}@{info['version']} has no {source}")
            data = member.read()
            for asset, original, replacement, _why in PATCHES:
                if asset == target:
                    text = data.decode("utf-8")
                    if text.count(original) != 1:
                        raise SystemExit(f"patch for {asset} does not apply: {original!r}")
                    data = text.replace(original, replacement).encode("utf-8")
            (ASSETS / target).write_bytes(data)
        license_name = json.load(tar.extractfile("package/package.json"))["license"]  # type: ignore[arg-type]
    return {
        "version": info["version"],
        "license": license_name,
        "integrity": info["integrity"],
        "patches": [
            {"file": asset, "why": why}
            for asset, _o, _r, why in PATCHES
            if asset in PACKAGES[package].values()
        ],
        "files": {t: sha256(ASSETS / t) for t in sorted(PACKAGES[package].values())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # ReDoc 2 is what FastAPI targets and half the size of ReDoc 3's standalone bundle.
    parser.add_argument("--swagger-ui", default="5.35.0")
    parser.add_argument("--redoc", default="2.5.4")
    args = parser.parse_args()
    ASSETS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = {
            "swagger-ui-dist": vendor("swagger-ui-dist", args.swagger_ui, Path(tmp)),
            "redoc": vendor("redoc", args.redoc, Path(tmp)),
        }
    (ASSETS / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
