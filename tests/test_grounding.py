"""The grounding parser (every box syntax, never raises), boxes -> page lines, and the prompt templates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docvlm.datamodel import TilePlan
from docvlm.errors import UsageError
from docvlm.grounding import boxes_to_lines, merge_tiles, page_lines_from_outputs, parse_output
from docvlm.plan import plan_page
from docvlm.prompts import parse_template, prompts_dir, render_prompt


def boxes(result):
    return [(i.text, i.box_model, i.label) for i in result.items]


# --- Qwen2-VL box tokens ----------------------------------------------------------------------------------


def test_qwen2_tokens_with_refs_several_boxes_and_stray_text():
    raw = (
        "Here you go:\n<|object_ref_start|>TOTAL 9.00<|object_ref_end|><|box_start|>(10,20),(300,40)<|box_end|>"
        "<|box_start|>(1,2),(3,4)<|box_end|>\nCash<|box_start|>(5, 6), (7, 8)<|box_end|>"
        "<|box_start|>(100,200),(300,400)<|box_end|><|im_end|>"
    )
    r = parse_output(raw, "qwen2")
    assert r.errors == []
    assert boxes(r) == [
        ("TOTAL 9.00", (10.0, 20.0, 300.0, 40.0), None),
        ("TOTAL 9.00", (1.0, 2.0, 3.0, 4.0), None),
        ("Cash", (5.0, 6.0, 7.0, 8.0), None),
        ("", (100.0, 200.0, 300.0, 400.0), None),
    ]


def test_qwen2_bad_and_cut_box_tokens_are_errors():
    r = parse_output("<|box_start|>(1,2),(3)<|box_end|> ok <|box_start|>(1,2),(3,", "qwen2")
    assert r.items == []
    assert any("3 numbers" in e for e in r.errors) and any("unterminated" in e for e in r.errors)


# --- JSON -------------------------------------------------------------------------------------------------


def test_qwen25_json_in_fences_with_text_content_and_label():
    raw = (
        '```json\n[\n  {"bbox_2d": [12, 30, 200, 52], "text_content": "Invoice \\"A\\" {1}"},\n'
        '  {"bbox_2d": [5.5, 6, 70, 80], "label": "total"}\n]\n```'
    )
    r = parse_output(raw, "qwen2.5")
    assert r.errors == []
    assert boxes(r) == [
        ('Invoice "A" {1}', (12.0, 30.0, 200.0, 52.0), None),
        ("total", (5.5, 6.0, 70.0, 80.0), "total"),
    ]


def test_json_without_fences_and_truncated_at_token_limit():
    raw = '[{"bbox_2d": [1, 2, 3, 4], "text_content": "a"}, {"bbox_2d": [5, 6, 7, 8], "text_content": "b"}, {"bbox_2d": [9, 1'
    r = parse_output(raw, "qwen3")
    assert [i.text for i in r.items] == ["a", "b"]
    assert len(r.errors) == 1 and "truncated" in r.errors[0]


def test_json_nested_fields_point_and_bad_boxes():
    raw = (
        '{"total": {"value": "12.00", "bbox_2d": [1, 2, 3, 4]}, "where": {"point_2d": [5, 6]}, '
        '"x": {"bbox_2d": [1, 2, 3]}, "y": {"bbox_2d": [1, 2, 3, "NaN"]}}'
    )
    r = parse_output(raw, "qwen2.5")
    assert boxes(r) == [("12.00", (1.0, 2.0, 3.0, 4.0), "total")]
    assert any("point_2d" in e for e in r.errors)
    assert sum("not 4 numbers" in e for e in r.errors) == 2


def test_extract_list_format():
    raw = '[{"field": "total", "value": "1,642.56", "bbox_2d": [10, 20, 30, 40]}]'
    r = parse_output(raw, "qwen2.5")
    assert boxes(r) == [("1,642.56", (10.0, 20.0, 30.0, 40.0), "total")]


def test_trailing_commas_tolerated():
    r = parse_output('[{"bbox_2d": [1, 2, 3, 4,], "text_content": "x",},]', "qwen2.5")
    assert boxes(r) == [("x", (1.0, 2.0, 3.0, 4.0), None)] and r.errors == []


# --- HTML -------------------------------------------------------------------------------------------------


def test_qwen_html_data_bbox():
    raw = (
        '<html><body><h1 data-bbox="10 20 300 60">Nordlicht &amp; Co</h1>\n'
        '<p data-bbox="10 70 200 90">Bill <b>to</b>:</p><table data-bbox="1 2 3">x</table></body></html>'
    )
    r = parse_output(raw, "qwen2.5")
    assert boxes(r) == [
        ("Nordlicht & Co", (10.0, 20.0, 300.0, 60.0), None),
        ("Bill to :", (10.0, 70.0, 200.0, 90.0), None),
    ]
    assert len(r.errors) == 1


# --- nothing / garbage ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["", "[]", "```json\n[]\n```", "  \n"])
def test_empty_answers_are_not_errors(raw):
    r = parse_output(raw, "qwen2.5")
    assert r.items == [] and r.errors == []


def test_prose_without_boxes_is_an_error():
    r = parse_output("I cannot see any text in this image.", "qwen3")
    assert r.items == [] and len(r.errors) == 1 and "no boxes" in r.errors[0]


_alphabet = st.sampled_from(
    list('{}[]",:0123456789.-e ()\n\\abc')
    + ["<|box_start|>", "<|box_end|>", "<|object_ref_start|>", "<|object_ref_end|>", '"bbox_2d"', '"point_2d"',
       'data-bbox="', "<p ", ">", "</p>", "```json", "NaN", "Infinity", "1e999"]
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=300), st.lists(_alphabet, max_size=80).map("".join)))
def test_parser_never_raises(raw):
    for fam in ("qwen2", "qwen2.5", "qwen3"):
        r = parse_output(raw, fam)
        for item in r.items:
            assert len(item.box_model) == 4
            assert all(v == v and abs(v) != float("inf") for v in item.box_model)


@settings(max_examples=150, deadline=None)
@given(
    coords=st.lists(st.floats(-5000, 5000, allow_nan=False), min_size=4, max_size=4),
    fam=st.sampled_from(["qwen2", "qwen2.5", "qwen3"]),
    w=st.integers(30, 3000),
    h=st.integers(30, 5000),
    budget=st.integers(64, 3000),
)
def test_boxes_always_inside_the_page_or_reported(coords, fam, w, h, budget):
    plan = plan_page((w, h), fam, x_height_px=10.0, max_visual_tokens=budget)
    raw = '[{"bbox_2d": [' + ", ".join(repr(c) for c in coords) + '], "text_content": "t"}]'
    for tile in plan.tiles:
        lines, errors = boxes_to_lines(parse_output(raw, fam), tile, fam, (w, h), page_index=0)
        assert len(lines) + len(errors) == 1
        for ln in lines:
            x0, y0, x1, y1 = ln.bbox_page_px
            cx0, cy0, cx1, cy1 = tile.crop_page_px
            assert cx0 <= x0 < x1 <= cx1 and cy0 <= y0 < y1 <= cy1
        for e in errors:
            assert e.code == "invalid_box" and e.tile == tile.index


def test_boxes_to_lines_inverted_box_is_reported_not_fixed():
    tile = TilePlan(index=3, kind="tile", crop_page_px=(100, 200, 600, 700), encoded_size=(280, 280), visual_tokens=100)
    r = parse_output('[{"bbox_2d": [50, 60, 10, 80], "text_content": "x"}, {"bbox_2d": [0, 0, 280, 280]}]', "qwen2.5")
    lines, errors = boxes_to_lines(r, tile, "qwen2.5", (1000, 1000), page_index=2, where="a.pdf (page 3)")
    assert [e.code for e in errors] == ["invalid_box"] and errors[0].page == 2 and errors[0].tile == 3
    assert "a.pdf (page 3)" in errors[0].message
    assert lines[0].bbox_page_px == (100.0, 200.0, 600.0, 700.0) and lines[0].tile == 3


def test_merge_tiles_removes_overlap_duplicates():
    plan = plan_page((500, 3000), "qwen2.5", x_height_px=10.0, max_visual_tokens=600)
    assert plan.mode == "tiled"
    t0, t1 = plan.tiles[0], plan.tiles[1]
    y = (t1.crop_page_px[1] + t0.crop_page_px[3]) / 2  # a line inside the overlap of tiles 0 and 1
    from docvlm.datamodel import TileOutput
    from docvlm.geometry import page_to_model

    outs = []
    for t in (t0, t1):
        b = page_to_model((20, y - 5, 300, y + 5), t, "qwen2.5")
        outs.append(TileOutput(tile=t.index, raw_text=f'[{{"bbox_2d": {list(b)}, "text_content": "SUBTOTAL 12.00"}}]'))
    lines, errors = page_lines_from_outputs(plan, outs, page_index=0)
    assert errors == [] and len(lines) == 1
    assert len(merge_tiles(lines + lines)) == 2  # the same tile twice is not an overlap duplicate


# --- prompts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fam", ["qwen2", "qwen2.5", "qwen3"])
def test_every_prompt_renders_with_id_and_version(fam):
    read = render_prompt("read", fam)
    assert read.id == f"read-{fam}" and read.version >= 1 and read.ref == f"read-{fam}@{read.version}"
    ground = render_prompt("ground", fam, query="the total amount")
    assert "the total amount" in ground.user and "{{" not in ground.user
    extract = render_prompt("extract", fam, schema_json='{"properties": {"total": {"type": "string"}}}')
    assert '"total"' in extract.user and "bbox" in extract.user.lower() or "box" in extract.user
    if fam == "qwen2":
        assert "<|box_start|>" in read.user and "0 to 1000" in read.user
    else:
        assert "bbox_2d" in read.user and "text_content" in read.user
        assert ("0 to 1000" in read.user) == (fam == "qwen3")


def test_prompt_missing_variable_and_bad_template(tmp_path):
    with pytest.raises(UsageError, match="query"):
        render_prompt("ground", "qwen2.5")
    with pytest.raises(UsageError, match="no prompt template"):
        render_prompt("read", "llava")
    with pytest.raises(UsageError, match="first line"):
        parse_template("hello\n--- user\nx", tmp_path / "x.txt")
    assert prompts_dir().name == "prompts"


def test_thumbnail_lines_never_replace_tile_lines():
    from docvlm.datamodel import TileOutput
    from docvlm.geometry import page_to_model

    plan = plan_page((600, 2200), "qwen2.5", x_height_px=10.0, max_visual_tokens=900, task_kind="extract")
    thumb = next(t for t in plan.tiles if t.kind == "thumbnail")
    tile0 = plan.tiles[0]
    assert thumb.visual_tokens <= 640
    truth = (40.0, 100.0, 400.0, 122.0)
    outs = [
        TileOutput(tile=tile0.index, raw_text=json_line(page_to_model(truth, tile0, "qwen2.5"), "TOTAL 12.00")),
        # the thumbnail's coarse box is a bit larger: it must not win the merge
        TileOutput(tile=thumb.index, raw_text=json_line(
            page_to_model((30.0, 90.0, 420.0, 130.0), thumb, "qwen2.5"), "TOTAL 12.00")
            [:-1] + ", " + json_line(page_to_model((40.0, 2000.0, 300.0, 2030.0), thumb, "qwen2.5"), "only here")[1:]),
    ]
    lines, errors = page_lines_from_outputs(plan, outs, page_index=0)
    assert errors == []
    by_text = {ln.text: ln for ln in lines}
    assert set(by_text) == {"TOTAL 12.00", "only here"}
    assert by_text["TOTAL 12.00"].tile == tile0.index and by_text["only here"].tile == thumb.index


def json_line(box, text):
    import json

    return json.dumps([{"bbox_2d": [int(v) for v in box], "text_content": text}])
