"""Covers, artist pictures and avatars: checked, squared and resized once to fixed sizes (Pillow).

Framework-free. `BadImage.status` says how the HTTP layer answers: 413 too large, 415 not an
accepted image, 422 a broken or oversized (decompression bomb) one.

Renditions never upscale: an original whose shorter side is below a size gets that rendition at its
own (square) size, so `renditions[640]` of a 300×200 picture is 200×200. Pages size images with CSS.
Metadata (EXIF, ICC, comments) is dropped; the EXIF orientation is applied first.
"""

from __future__ import annotations

import asyncio
import colorsys
import ctypes
import ctypes.util
import functools
import hashlib
import io
import math
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageOps, UnidentifiedImageError

SIZES = (64, 300, 640)
MAX_PIXELS = 40_000_000
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
JPEG_QUALITY = 85

# Pillow's own decompression-bomb guard, pinned rather than left to the library default: it warns
# above this many pixels and refuses above twice as many. `process` refuses above it as well.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_KEY = re.compile(r"[0-9a-f]{64}")
ORIGINAL = "original"  # a kept original, rendered on first use (ImageStore.save_original)


class BadImage(Exception):
    """An image upload that cannot be used; `status` is 413, 415 or 422."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ProcessedImage:
    """An accepted image: the original's hash and size, and one square JPEG per size."""

    sha256: str
    width: int
    height: int
    format: str
    renditions: dict[int, bytes] = field(repr=False)


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)


# Decoding is bounded in memory twice over (SPEC 10): each image is reduced while it is read
# (JPEG's DCT scaling through `draft`, `reduce` for the others, so a 40-Mpx picture is never
# held at full size more than once), and only `decode_slots` images are decoded at a time, on
# threads of their own so queued images wait without holding threads other work needs.
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr", "I", "F")
_pool: ThreadPoolExecutor | None = None
_slots = 2
_pool_lock = threading.Lock()


def configure_decoding(slots: int) -> None:
    """How many images are decoded at once (SONORA_IMAGE_DECODE_SLOTS)."""
    global _pool, _slots
    with _pool_lock:
        slots = max(1, int(slots))
        if slots != _slots or _pool is None:
            old, _pool, _slots = _pool, ThreadPoolExecutor(slots, "sonora-image"), slots
            if old is not None:
                old.shutdown(wait=False)


def decode_slots() -> int:
    return _slots


async def process_async(
    data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, *, max_pixels: int = MAX_PIXELS
) -> ProcessedImage:
    """`process` on the image threads: at most `decode_slots()` images are decoded at once; the
    others wait in line without taking a thread."""
    if _pool is None:
        configure_decoding(_slots)
    assert _pool is not None
    return await asyncio.get_running_loop().run_in_executor(
        _pool, functools.partial(_process_and_release, data, max_bytes, max_pixels)
    )


async def render_async(store: ImageStore, key: str) -> bool:
    """`store.render(key)` on the image threads (the same slots as `process_async`)."""
    if _pool is None:
        configure_decoding(_slots)
    assert _pool is not None
    return await asyncio.get_running_loop().run_in_executor(
        _pool, functools.partial(_render_and_release, store, key))


def _render_and_release(store: ImageStore, key: str) -> bool:
    try:
        return store.render(key)
    finally:
        if _malloc_trim is not None:  # as _process_and_release
            _malloc_trim(0)


def _process_and_release(data: bytes, max_bytes: int, max_pixels: int) -> ProcessedImage:
    try:
        return process(data, max_bytes, max_pixels=max_pixels)
    finally:
        # A decoded picture takes up to ~150 MiB in the C heap; glibc keeps freed blocks in the
        # thread's arena unless asked to hand them back, so the process would stay that large.
        if _malloc_trim is not None:
            _malloc_trim(0)


def _libc_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc: nothing to trim


_malloc_trim = _libc_malloc_trim()


@dataclass(frozen=True)
class InspectedImage:
    """A picture checked without being decoded: its hash, size and format."""

    sha256: str
    width: int
    height: int
    format: str


def inspect(
    data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, *, max_pixels: int = MAX_PIXELS,
    decode: bool = False,
) -> InspectedImage:
    """Check a picture (sniffed by content, its size read from its header, its structure
    verified) without resizing it. `decode` also decodes it once, a JPEG at an eighth of its
    size (cheap): a file cut short passes the structure check but not this, so what an import
    keeps as an original (`ImageStore.save_original`) renders on first use."""
    if len(data) > max_bytes:
        raise BadImage(f"image larger than {max_bytes} bytes", 413)
    if not data:
        raise BadImage("empty image", 415)
    try:
        with _open(data) as probe:
            fmt = probe.format or ""
            width, height = probe.size
            if width * height > max_pixels:
                raise BadImage(f"image has more than {max_pixels} pixels", 422)
            probe.verify()
        if decode:
            with _open(data) as im:
                if im.format == "JPEG":
                    im.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                im.load()
    except BadImage:
        raise
    except UnidentifiedImageError as exc:
        raise BadImage("not a JPEG, PNG, WebP or GIF image", 415) from exc
    except Exception as exc:
        raise _decoding_error(exc) from exc
    return InspectedImage(hashlib.sha256(data).hexdigest(), width, height, fmt)


def _decoding_error(exc: Exception) -> BadImage:
    """What a failure of Pillow on untrusted bytes means (422): a decompression bomb, or a
    broken image (decoders raise OSError, SyntaxError, ValueError, struct.error …)."""
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return BadImage("image has too many pixels", 422)
    return BadImage(f"broken image: {exc}", 422)


def process(
    data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, *, max_pixels: int = MAX_PIXELS
) -> ProcessedImage:
    """Check an uploaded image (sniffed by content) and make its square JPEG renditions."""
    checked = inspect(data, max_bytes, max_pixels=max_pixels)
    try:
        with _open(data) as im:
            im.seek(0)  # the first frame of an animated GIF/WebP
            renditions = _renditions(_reduced(im))
    except Exception as exc:
        raise _decoding_error(exc) from exc
    return ProcessedImage(checked.sha256, checked.width, checked.height, checked.format,
                          renditions)


def _reduced(im: Image.Image) -> Image.Image:
    """The image decoded at the smallest size whose shorter side still covers the largest
    rendition: JPEGs are scaled by the decoder itself (1/2 to 1/8), others reduced right after
    decoding by a whole factor, the full-size buffer released at once."""
    need = max(SIZES)
    side = min(im.size)
    if side > need and im.format == "JPEG":
        scale = need / side
        im.draft("RGB", (math.ceil(im.width * scale), math.ceil(im.height * scale)))
    im.load()
    factor = min(im.size) // need
    if factor >= 2:
        source = im
        if im.mode not in _REDUCIBLE or "transparency" in im.info:  # reduce takes these only
            source = im.convert("RGBA" if im.mode in ("P", "PA") or "transparency" in im.info
                                else "RGB")
            im.close()
        reduced = source.reduce(factor)
        reduced.info = {k: v for k, v in im.info.items() if k != "transparency"}  # EXIF kept
        source.close()
        return reduced
    return im


def _flatten(im: Image.Image) -> Image.Image:
    """RGB on a white background (transparent pixels would turn black in a JPEG)."""
    if im.mode == "P":
        im = im.convert("RGBA")  # P→RGB with transparency warns; go through RGBA
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _renditions(im: Image.Image) -> dict[int, bytes]:
    im = ImageOps.exif_transpose(im) or im
    rgb = _flatten(im)
    side = min(rgb.size)
    left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
    square = rgb.crop((left, top, left + side, top + side))
    out: dict[int, bytes] = {}
    for size in SIZES:
        target = min(size, side)
        # reducing_gap: a whole-factor box reduction first, then Lanczos over at most twice the
        # target (Pillow: indistinguishable from Lanczos over the full picture, a fraction of it).
        resized = square if target == side else square.resize(
            (target, target), Image.Resampling.LANCZOS, reducing_gap=2.0)
        out[size] = _jpeg(resized)
    return out


def _jpeg(im: Image.Image) -> bytes:
    im.info = {}  # the uploaded picture's EXIF, ICC profile and comments are never served
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return buf.getvalue()


def _write_atomically(folder: Path, dest: Path, data: bytes, durable: bool = True) -> None:
    tmp = folder / f".{dest.name}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)


class ImageStore:
    """Renditions on disk: `images/<aa>/<sha256>/<size>.jpg` under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError("an image key is 64 lowercase hex characters")
        return self.root / "images" / key[:2] / key

    def path(self, key: str, size: int) -> Path:
        """Where the rendition of `key` at `size` lives; `ValueError` for a bad key or size."""
        if size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}")
        return self._dir(key) / f"{size}.jpg"

    def save(self, processed: ProcessedImage) -> str:
        """Write every rendition atomically; returns the image key (the original's sha256). An
        original kept for later (`save_original`) is dropped: the renditions replace it."""
        key = processed.sha256
        folder = self._dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        for size, data in processed.renditions.items():
            _write_atomically(folder, self.path(key, size), data)
        self.original_path(key).unlink(missing_ok=True)
        return key

    def original_path(self, key: str) -> Path:
        """Where an original kept for rendering later lives (`save_original`)."""
        return self._dir(key) / ORIGINAL

    def save_original(self, key: str, data: bytes, durable: bool = True) -> None:
        """Keep a checked picture (`inspect`) whose renditions are made on first use
        (`render`): a folder import reads a thousand album covers without resizing any.
        `durable=False` skips the fsync: the caller syncs once for a whole batch."""
        if hashlib.sha256(data).hexdigest() != key:
            raise ValueError("the key of an original is its sha256")
        folder = self._dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(folder, self.original_path(key), data, durable)

    def render(self, key: str) -> bool:
        """Make the renditions of a kept original, then drop it (the renditions are all that is
        served); True when they exist afterwards. Safe to run twice at once: each rendition is
        replaced atomically with the same bytes. `BadImage` when the original does not decode
        (it is dropped too: the picture is then simply missing); a disk error leaves it kept."""
        if self.exists(key):
            return True
        original = self.original_path(key)
        try:
            data = original.read_bytes()
        except FileNotFoundError:
            return self.exists(key)  # rendered meanwhile by another process, or never kept
        try:
            processed = process(data)
        except BadImage:  # it never will render: not read again at every ask
            original.unlink(missing_ok=True)
            raise
        self.save(processed)  # drops the original
        return True

    def exists(self, key: str) -> bool:
        """Whether every rendition of `key` is on disk."""
        return all(self.path(key, size).is_file() for size in SIZES)

    def remove(self, key: str) -> None:
        """Delete every rendition of `key`; a missing image is not an error."""
        shutil.rmtree(self._dir(key), ignore_errors=True)


def _colour(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


def placeholder_cover(seed: str, size: int = 640) -> bytes:
    """A generated cover for `seed` (same seed, same picture): a diagonal gradient of two colours
    derived from its hash, with a soft circle and a band — for demo albums and art-less artists."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    hue = digest[0] / 255
    top = _colour(hue, 0.55 + digest[1] / 1020, 0.75 + digest[2] / 1020)
    bottom = _colour(hue + 0.25 + digest[3] / 1020, 0.65, 0.35 + digest[4] / 1275)

    mask = Image.linear_gradient("L").rotate(45 + digest[5] % 90, expand=True)
    mask = ImageOps.fit(mask, (size, size))
    img = Image.composite(Image.new("RGB", (size, size), top), Image.new("RGB", (size, size), bottom), mask)

    overlay = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    r = size * (0.18 + digest[6] / 1275)
    cx, cy = size * (0.3 + digest[7] / 640), size * (0.3 + digest[8] / 640)
    accent = _colour(hue + 0.5, 0.35, 0.98)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*accent, 150))
    band_y = size * (0.62 + digest[9] / 1700)
    draw.rectangle((0, band_y, size, band_y + size * 0.05), fill=(255, 255, 255, 60))
    overlay = overlay.filter(ImageFilter.GaussianBlur(size / 160))
    img = Image.alpha_composite(img.convert("RGBA"), overlay).convert("RGB")

    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()
