"""Bad inputs, each a real file written on the spot: a clear typed error naming the file (and page), from
`open_document`, `render()` and through `convert_document` (where a bad document is a failed result)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from docvlm import sources
from docvlm.datamodel import EngineInfo, Line, PageResult
from docvlm.engines.base import Task
from docvlm.errors import (
    CorruptInputError,
    EmptyInputError,
    EncryptedInputError,
    InputError,
    PageTooLargeError,
    UnsupportedInputError,
)
from docvlm.options import ConvertOptions
from docvlm.pipeline import convert_document
from docvlm.sources import SourcePage, open_document


def opts(**kw: object) -> ConvertOptions:
    return ConvertOptions(**kw)  # type: ignore[arg-type]


def pdf_bytes(pages: int = 3, **save: object) -> bytes:
    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page(width=300, height=200)
        page.insert_text((20, 50), f"Page {i + 1} text", fontsize=14)
    data = doc.tobytes(**save)
    doc.close()
    return data


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def zero_page_pdf() -> bytes:
    """A well-formed PDF (correct xref) whose page tree is empty."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions in a few bytes: the shape of a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def open_error(path: Path, **kw: object) -> InputError:
    with pytest.raises(InputError) as err:
        open_document(path, opts(**kw))
    return err.value


# --- open-time errors ---------------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    err = open_error(write(tmp_path / "empty.pdf", b""))
    assert isinstance(err, EmptyInputError) and "empty.pdf" in str(err) and "0 bytes" in str(err)


def test_missing_path(tmp_path: Path) -> None:
    err = open_error(tmp_path / "gone.pdf")
    assert "gone.pdf" in str(err) and "no such file" in str(err)


def test_folder_given_as_file(tmp_path: Path) -> None:
    err = open_error(tmp_path)
    assert str(tmp_path) in str(err) and "folder" in str(err)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_permission(tmp_path: Path) -> None:
    path = write(tmp_path / "locked.pdf", pdf_bytes(1))
    path.chmod(0)
    try:
        err = open_error(path)
    finally:
        path.chmod(0o644)
    assert "locked.pdf" in str(err) and "permission denied" in str(err)


def test_unreadable_file_permission_as_reported_by_os(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests often run as root, where chmod 0 does not stop reading: make the OS call fail the same way."""
    path = write(tmp_path / "locked.pdf", pdf_bytes(1))

    def denied(*args: object, **kw: object):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(sources, "open", denied, raising=False)
    err = open_error(path)
    assert type(err) is InputError and "locked.pdf" in str(err) and "permission denied" in str(err)


def test_corrupt_pdf_random_bytes(tmp_path: Path) -> None:
    data = b"%PDF-1.7\n" + bytes(range(256)) * 8
    err = open_error(write(tmp_path / "broken.pdf", data))
    assert isinstance(err, CorruptInputError) and "broken.pdf" in str(err) and "damaged" in str(err)


def test_truncated_pdf_header_only(tmp_path: Path) -> None:
    err = open_error(write(tmp_path / "cut.pdf", pdf_bytes(2)[:60]))
    assert isinstance(err, CorruptInputError) and "cut.pdf" in str(err)


def test_zero_page_pdf(tmp_path: Path) -> None:
    err = open_error(write(tmp_path / "nopages.pdf", zero_page_pdf()))
    assert isinstance(err, EmptyInputError) and "nopages.pdf" in str(err) and "no pages" in str(err)


def test_encrypted_pdf(tmp_path: Path) -> None:
    data = pdf_bytes(1, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="s3cret", owner_pw="owner")
    path = write(tmp_path / "locked.pdf", data)
    err = open_error(path)
    assert isinstance(err, EncryptedInputError) and "locked.pdf" in str(err) and "--password" in str(err)
    err = open_error(path, password="wrong")
    assert isinstance(err, EncryptedInputError) and "--password" in str(err) and "does not open" in str(err)
    with open_document(path, opts(password="s3cret", dpi=72)) as doc:
        words = [w.text for w in next(doc.pages()).text_layer().words]
    assert words == ["Page", "1", "text"]


def test_html_named_pdf(tmp_path: Path) -> None:
    err = open_error(write(tmp_path / "download.pdf", b"<!DOCTYPE html><html><body>Not found</body></html>"))
    assert isinstance(err, UnsupportedInputError)
    assert "download.pdf" in str(err) and "not a PDF" in str(err) and "HTML" in str(err)


def test_binary_junk_named_pdf(tmp_path: Path) -> None:
    err = open_error(write(tmp_path / "junk.pdf", bytes([0, 159, 146, 150, 1, 2, 3, 250]) * 64))
    assert isinstance(err, CorruptInputError) and "junk.pdf" in str(err) and "no PDF header" in str(err)


@pytest.mark.parametrize(
    ("name", "data", "what"),
    [
        ("report.docx", b"PK\x03\x04" + b"\x00" * 60, "ZIP"),
        ("notes.txt", b"shopping list\nmilk\n", "plain text"),
        ("anim.gif", b"GIF89a" + b"\x00" * 60, "GIF"),
    ],
)
def test_unsupported_types_list_supported_ones(tmp_path: Path, name: str, data: bytes, what: str) -> None:
    err = open_error(write(tmp_path / name, data))
    assert isinstance(err, UnsupportedInputError) and name in str(err) and what in str(err)
    assert "PDF, PNG, JPEG, TIFF" in str(err)


def test_image_named_png_but_damaged(tmp_path: Path) -> None:
    err = open_error(write(tmp_path / "bad.png", b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10))
    assert isinstance(err, CorruptInputError) and "bad.png" in str(err)


# --- pixel caps and decompression bombs ---------------------------------------------------------------------


def test_page_too_large_is_refused_before_rendering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "poster.pdf", pdf_bytes(2))
    with open_document(path, opts(dpi=600, max_page_pixels=1_000_000)) as doc:
        page = next(doc.pages())
        assert page.width_px * page.height_px == 2500 * 1667

        def no_render(*a: object, **k: object) -> None:
            raise AssertionError("rendered a page over the cap")

        monkeypatch.setattr(pymupdf.Page, "get_pixmap", no_render)
        with pytest.raises(PageTooLargeError) as err:
            page.render()
    msg = str(err.value)
    assert (
        "poster.pdf (page 1)" in msg and "--max-page-pixels" in msg and "4,167,500" in msg and "--dpi" in msg
    )
    assert err.value.page == 0


def test_decompression_bomb_png_header(tmp_path: Path) -> None:
    err = open_error(write(tmp_path / "bomb.png", png_header_only(60_000, 60_000)))
    assert isinstance(err, PageTooLargeError) and "bomb.png" in str(err) and "--max-page-pixels" in str(err)


@pytest.mark.parametrize(
    "size", [(120, 100), (400, 400)]
)  # over the cap (Pillow's warning), over 2x (its error)
def test_image_over_cap(tmp_path: Path, size: tuple[int, int]) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", size, "white").save(path)
    err = open_error(path, max_page_pixels=10_000)
    assert isinstance(err, PageTooLargeError) and "big.png" in str(err) and "--max-page-pixels" in str(err)
    with open_document(path, opts(max_page_pixels=1_000_000)) as doc:
        assert next(doc.pages()).render().size == size


def test_multipage_tiff_with_one_frame_over_cap(tmp_path: Path) -> None:
    path = tmp_path / "scan.tif"
    small, big = Image.new("L", (50, 50), 255), Image.new("L", (300, 300), 255)
    small.save(path, save_all=True, append_images=[big])
    with open_document(path, opts(max_page_pixels=20_000)) as doc:
        first, second = list(doc.pages())
        assert first.render().size == (50, 50)
        with pytest.raises(PageTooLargeError) as err:
            second.render()
    assert "scan.tif (page 2)" in str(err.value) and "--max-page-pixels" in str(err.value)


# --- damaged pages inside an otherwise fine file ------------------------------------------------------------


def truncated_mid_document(tmp_path: Path) -> Path:
    """Three pages; the file ends inside page 2's content stream, so page 3 is lost too."""
    data = pdf_bytes(3, garbage=0, deflate=False, no_new_id=True)
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        xref = doc[1].get_contents()[0]
    cut = data.index(b"\n%d 0 obj" % xref) + 40
    return write(tmp_path / "truncated.pdf", data[:cut])


def test_truncated_pdf_fails_only_the_damaged_pages(tmp_path: Path) -> None:
    path = truncated_mid_document(tmp_path)
    with open_document(path, opts(dpi=72)) as doc:
        pages = list(doc.pages())
        assert len(pages) == 3
        assert pages[0].render().size == (300, 200)
        assert [w.text for w in pages[0].text_layer().words] == ["Page", "1", "text"]
        for page in pages[1:]:
            for call in (page.render, page.text_layer):
                with pytest.raises(CorruptInputError) as err:
                    call()
                assert f"truncated.pdf (page {page.index + 1})" in str(err.value)


def test_truncated_jpeg_fails_at_render(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), "white").save(buf, format="JPEG")
    path = write(tmp_path / "cut.jpg", buf.getvalue()[: len(buf.getvalue()) // 2])
    with open_document(path, opts()) as doc:
        page = next(doc.pages())
        with pytest.raises(CorruptInputError) as err:
            page.render()
    assert "cut.jpg (page 1)" in str(err.value) and "truncated" in str(err.value)


# --- through the pipeline -----------------------------------------------------------------------------------


class RenderingEngine:
    """A tiny engine that renders each page and reports one line: enough to exercise the real source path."""

    name = "fake"

    def info(self) -> EngineInfo:
        return EngineInfo(name=self.name)

    def process_pages(self, pages: Sequence[SourcePage], task: Task) -> list[PageResult]:
        out = []
        for page in pages:
            img = page.render()
            out.append(
                PageResult(
                    index=page.index,
                    width_px=img.width,
                    height_px=img.height,
                    dpi=page.dpi,
                    status="success",
                    lines=[Line(text="x", bbox_page_px=(1.0, 1.0, 5.0, 5.0), confidence=1.0)],
                )
            )
        return out


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("empty.pdf", b"", "empty"),
        ("broken.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8, "corrupt"),
        ("page.html.pdf", b"<html><body>oops</body></html>", "unsupported"),
        ("nopages.pdf", zero_page_pdf(), "empty"),
    ],
)
def test_bad_document_is_a_failed_result(tmp_path: Path, name: str, data: bytes, code: str) -> None:
    path = write(tmp_path / name, data)
    result = convert_document(path, opts(), engine=RenderingEngine(), display_path=f"inbox/{name}")
    assert result.status == "failure" and result.pages == []
    (err,) = result.errors
    assert err.code == code and f"inbox/{name}" in err.message


def test_encrypted_document_is_a_failed_result(tmp_path: Path) -> None:
    path = write(tmp_path / "locked.pdf", pdf_bytes(1, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw"))
    result = convert_document(path, opts(), engine=RenderingEngine())
    assert result.status == "failure" and result.errors[0].code == "encrypted"
    assert "locked.pdf" in result.errors[0].message and "--password" in result.errors[0].message
    ok = convert_document(path, opts(password="pw", dpi=72), engine=RenderingEngine())
    assert ok.status == "success" and ok.source.kind == "pdf" and ok.source.page_count == 1


def test_damaged_page_fails_alone_in_the_pipeline(tmp_path: Path) -> None:
    path = truncated_mid_document(tmp_path)
    result = convert_document(path, opts(dpi=72), engine=RenderingEngine())
    assert result.status == "partial"
    assert [p.status for p in result.pages] == ["success", "failure", "failure"]
    assert result.pages[0].width_px == 300 and result.pages[0].lines[0].bbox_pdf_pt == (1.0, 1.0, 5.0, 5.0)
    err = result.pages[1].errors[0]
    assert err.code == "corrupt" and err.page == 1 and "truncated.pdf (page 2)" in err.message


def test_page_over_cap_is_a_failed_page(tmp_path: Path) -> None:
    path = write(tmp_path / "big.pdf", pdf_bytes(1))
    result = convert_document(path, opts(dpi=600, max_page_pixels=100_000), engine=RenderingEngine())
    assert result.status == "failure"
    (page,) = result.pages
    assert page.status == "failure" and page.errors[0].code == "page_too_large"
    assert "--max-page-pixels" in page.errors[0].message and "big.pdf (page 1)" in page.errors[0].message
