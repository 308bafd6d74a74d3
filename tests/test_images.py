"""app.media.images: accepted formats, square JPEG renditions, refusals, the store and placeholders."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from app.media import images
from app.media.images import SIZES, BadImage, ImageStore, placeholder_cover, process


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    return Image.effect_noise(size, 64).convert(mode)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width`×`height` pixels but carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def _gif() -> bytes:
    frames = [Image.new("P", (650, 660), i) for i in (1, 2)]
    for f in frames:
        f.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (768 - 9))
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], transparency=0, duration=100)


def _samples() -> dict[str, bytes]:
    rgba = _noise((700, 900), "RGBA")
    rgba.putalpha(128)
    return {
        "JPEG": _encode(_noise((900, 700)), "JPEG"),
        "PNG": _encode(rgba, "PNG"),
        "WEBP": _encode(_noise((1000, 700)), "WEBP"),
        "GIF": _gif(),
    }


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_accepted_formats_give_square_jpeg_renditions(fmt: str) -> None:
    data = _samples()[fmt]
    out = process(data)
    assert out.sha256 == hashlib.sha256(data).hexdigest()
    assert out.format == fmt
    with Image.open(io.BytesIO(data)) as original:
        assert (out.width, out.height) == original.size
    assert sorted(out.renditions) == sorted(SIZES)
    for size, jpeg in out.renditions.items():
        with Image.open(io.BytesIO(jpeg)) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert im.size == (size, size)


def test_small_images_are_not_upscaled() -> None:
    out = process(_encode(_noise((120, 50)), "PNG"))
    for jpeg in out.renditions.values():
        with Image.open(io.BytesIO(jpeg)) as im:
            assert im.size == (50, 50)


def test_exif_orientation_is_applied_and_metadata_dropped() -> None:
    raw = Image.new("RGB", (600, 300), (0, 0, 255))
    raw.paste((255, 0, 0), (0, 0, 600, 150))  # top half red, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise: the red half ends up on the right
    exif[0x010F] = "Camera Maker"
    out = process(_encode(raw, "JPEG", exif=exif.tobytes(), quality=95))
    with Image.open(io.BytesIO(out.renditions[64])) as im:
        left, right = im.getpixel((5, 32)), im.getpixel((58, 32))
        assert isinstance(left, tuple) and isinstance(right, tuple)
        assert left[2] > 200 and left[0] < 60  # blue
        assert right[0] > 200 and right[2] < 60  # red
        assert "exif" not in im.info and not im.getexif()
        assert "icc_profile" not in im.info


def test_transparency_becomes_white() -> None:
    clear = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    out = process(_encode(clear, "PNG"))
    with Image.open(io.BytesIO(out.renditions[64])) as im:
        pixel = im.getpixel((10, 10))
        assert isinstance(pixel, tuple) and min(pixel) > 245


@pytest.mark.parametrize("data", [b"hello, this is text", b"", b"GIF89a", b"<svg xmlns='x'/>"])
def test_non_images_are_415(data: bytes) -> None:
    with pytest.raises(BadImage) as err:
        process(data)
    assert err.value.status == 415


def test_other_image_formats_are_415() -> None:
    for fmt in ("BMP", "TIFF"):
        with pytest.raises(BadImage) as err:
            process(_encode(_noise((40, 40)), fmt))
        assert err.value.status == 415


def test_too_many_bytes_is_413() -> None:
    with pytest.raises(BadImage) as err:
        process(_samples()["JPEG"], max_bytes=1000)
    assert err.value.status == 413


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_images_are_422(fmt: str) -> None:
    data = _encode(_noise((400, 400)), fmt)
    with pytest.raises(BadImage) as err:
        process(data[: len(data) // 2])
    assert err.value.status == 422


def test_decompression_bomb_is_422() -> None:
    with pytest.raises(BadImage) as err:
        process(_png_header_only(30_000, 30_000))  # 900 Mpx: Pillow's DecompressionBombError
    assert err.value.status == 422


def test_just_over_the_pixel_limit_is_422() -> None:
    with pytest.raises(BadImage) as err:
        process(_png_header_only(7_000, 7_000))  # 49 Mpx: between the limit and twice the limit
    assert err.value.status == 422


def test_pixel_limit_can_be_lowered() -> None:
    data = _encode(_noise((200, 200)), "PNG")
    with pytest.raises(BadImage) as err:
        process(data, max_pixels=10_000)
    assert err.value.status == 422
    assert process(data, max_pixels=40_000).width == 200


def test_pillow_limit_is_pinned() -> None:
    assert Image.MAX_IMAGE_PIXELS == images.MAX_PIXELS == 40_000_000


def test_store_saves_and_removes(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    processed = process(_samples()["JPEG"])
    key = store.save(processed)
    assert key == processed.sha256
    assert store.exists(key)
    for size in SIZES:
        path = store.path(key, size)
        assert path == tmp_path / "images" / key[:2] / key / f"{size}.jpg"
        assert path.read_bytes() == processed.renditions[size]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    assert store.save(processed) == key  # saving again is harmless
    store.remove(key)
    assert not store.exists(key)
    store.remove(key)


def test_an_original_is_checked_kept_and_rendered_on_first_use(tmp_path: Path) -> None:
    """What an import keeps: a picture checked without decoding (the same refusals as
    `process`), its original, and on first use the very renditions `process` makes, after which
    the original is dropped. Rendering again, or a second time at once, changes nothing."""
    data = _samples()["PNG"]
    checked = images.inspect(data)
    processed = process(data)
    assert (checked.sha256, checked.width, checked.height, checked.format) == (
        processed.sha256, processed.width, processed.height, processed.format)
    store = ImageStore(tmp_path)
    store.save_original(checked.sha256, data)
    assert store.original_path(checked.sha256).read_bytes() == data
    assert not store.exists(checked.sha256)
    assert store.render(checked.sha256)
    for size in SIZES:
        assert store.path(checked.sha256, size).read_bytes() == processed.renditions[size]
    assert not store.original_path(checked.sha256).exists()
    assert store.render(checked.sha256)
    assert not ImageStore(tmp_path).render("b" * 64)  # nothing kept: nothing to render
    # The same picture kept again, then uploaded (saved at once): the upload's renditions
    # replace the kept original, which is not left behind.
    store.remove(checked.sha256)
    store.save_original(checked.sha256, data)
    store.save(processed)
    assert store.exists(checked.sha256) and not store.original_path(checked.sha256).exists()
    with pytest.raises(ValueError):
        store.save_original("c" * 64, data)  # an original's key is its hash


@pytest.mark.parametrize(("data", "status"), [
    (b"", 415), (b"GIF89a not really", 415), (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 415),
])
def test_inspect_refuses_what_process_refuses(data: bytes, status: int) -> None:
    for check in (images.inspect, process):
        with pytest.raises(BadImage) as caught:
            check(data)
        assert caught.value.status == status


def test_a_kept_original_that_does_not_decode_is_refused_when_rendered(tmp_path: Path) -> None:
    """A JPEG cut in its image data passes the header checks of `inspect` but not decoding:
    `inspect(decode=True)`, what an import asks, refuses it at once; one kept anyway (a file
    damaged on disk later) is refused when rendered, and dropped."""
    whole = placeholder_cover("cut short", 320)
    cut = whole[: len(whole) // 2]
    with pytest.raises(BadImage):
        images.inspect(cut, decode=True)
    assert images.inspect(whole, decode=True).sha256 == hashlib.sha256(whole).hexdigest()
    store = ImageStore(tmp_path)
    key = images.inspect(cut).sha256
    store.save_original(key, cut)
    with pytest.raises(BadImage):
        store.render(key)
    assert not store.exists(key)
    assert not store.original_path(key).exists()  # not decoded again at every ask
    assert not store.render(key)


@pytest.mark.parametrize("key", ["../" + "a" * 61, "A" * 64, "a" * 63, "a" * 65, "g" * 64, "",
                                 "a" * 63 + "\x00", "/" + "a" * 63])
def test_store_refuses_bad_keys(tmp_path: Path, key: str) -> None:
    store = ImageStore(tmp_path)
    with pytest.raises(ValueError):
        store.path(key, 64)
    with pytest.raises(ValueError):
        store.remove(key)


def test_store_refuses_unknown_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ImageStore(tmp_path).path("a" * 64, 100)


def test_placeholder_cover_is_a_deterministic_jpeg() -> None:
    a, again, b = placeholder_cover("Harbour Lights"), placeholder_cover("Harbour Lights"), placeholder_cover("x")
    assert a == again and a != b
    with Image.open(io.BytesIO(a)) as im:
        assert im.format == "JPEG" and im.size == (640, 640)
    with Image.open(io.BytesIO(placeholder_cover("small", 64))) as im:
        assert im.size == (64, 64)
    assert sorted(process(a).renditions) == sorted(SIZES)
