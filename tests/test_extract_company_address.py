"""Company and address rules on scripted OCR lines with word boxes: spaces from the box gaps, the registered
name printed above its registration number. Real-file cases live in test_extract_evidence.py."""

from __future__ import annotations

from docvlm.datamodel import Line, Word
from docvlm.extract.rules import build_page, extract_rules, spaced_line_text


def _worded(words: list[tuple[str, float, float]], y0: float, y1: float, text: str | None = None) -> Line:
    """An OCR line from (word, x0, x1) boxes; `text` is what the recogniser returned (spaces may be missing)."""
    ws = [Word(text=t, bbox_page_px=(x0, y0, x1, y1)) for t, x0, x1 in words]
    return Line(text=text if text is not None else " ".join(t for t, _, _ in words),
                bbox_page_px=(words[0][1], y0, words[-1][2], y1), words=ws)


def _rules(lines, w=600, h=900):
    return extract_rules([build_page(lines, 0, w, h)])


def test_a_wide_gap_between_word_boxes_is_a_space_the_text_dropped():
    # 'JALAN' and 'AIR' stand 20 px apart on a 35 px line; the recogniser returned 'JALANAIR'
    line = _worded([("NO", 253, 300), ("290,", 313, 387), ("JALAN", 387, 487), ("AIR", 507, 554),
                    ("PANAS,", 567, 689)], 317, 352, text="NO 290, JALANAIR PANAS,")
    assert spaced_line_text(line) == "NO 290, JALAN AIR PANAS,"


def test_touching_word_boxes_and_punctuation_stay_as_read():
    # boxes that touch (a recogniser split inside one printed word) add no space; ',' and '.' are never changed
    touching = _worded([("S.H.H.", 100, 180), ("MOTOR", 182, 260)], 10, 40, text="S.H.H.MOTOR")
    assert spaced_line_text(touching) == "S.H.H.MOTOR"
    glued = _worded([("27,JALAN", 131, 206), ("DEDAP", 214, 263), ("13.", 270, 299)], 191, 215)
    assert spaced_line_text(glued) == "27,JALAN DEDAP 13."
    cjk = _worded([("谢", 10, 40), ("谢", 60, 90)], 0, 30, text="谢谢")
    assert spaced_line_text(cjk) == "谢谢"


def test_words_that_do_not_spell_the_text_leave_it_unchanged():
    odd = _worded([("ABC", 10, 60), ("XYZ", 100, 150)], 0, 30, text="ABCDEF")
    assert spaced_line_text(odd) == "ABCDEF"


def test_address_gets_the_spaces_its_word_boxes_show():
    lines = [_worded([("KEDAI", 150, 230), ("MAJU", 245, 320), ("SDN", 335, 390), ("BHD", 405, 460)], 10, 40),
             _worded([("(1234567-X)", 200, 400)], 45, 75),
             _worded([("NO", 100, 140), ("5,", 150, 180), ("JALAN", 190, 280), ("SATU,", 300, 390)], 80, 110,
                     text="NO 5, JALANSATU,"),
             _worded([("47100", 100, 190), ("PUCHONG", 205, 340)], 115, 145, text="47100PUCHONG"),
             _worded([("TEL:03-1234", 150, 400)], 150, 180)]
    res = _rules(lines)
    assert res.values["vendor_name"].value == "KEDAI MAJU SDN BHD"
    assert res.values["vendor_address"].value == "NO 5, JALAN SATU, 47100 PUCHONG"


def test_company_is_the_name_printed_above_its_registration_number_not_logo_noise():
    # the top row is a logo the OCR read as letters, the next a stray number; the registered name has no
    # legal form but sits right above its registration number
    lines = [_worded([("C1OC181E", 200, 380)], 10, 40), _worded([("1212012", 220, 360)], 45, 75),
             _worded([("SYARIKAT", 100, 230), ("PERNIAGAAN", 245, 420), ("MAJU", 435, 500)], 80, 110),
             _worded([("(81109-A)", 220, 360)], 115, 145),
             _worded([("NO", 100, 140), ("9,", 150, 180), ("JALAN", 190, 280), ("DUA,", 300, 390)], 150, 180),
             _worded([("53200", 100, 190), ("KUALA", 205, 300), ("LUMPUR.", 315, 440)], 185, 215),
             _worded([("TEL:03-40210276", 150, 400)], 220, 250)]
    res = _rules(lines)
    assert res.values["vendor_name"].value == "SYARIKAT PERNIAGAAN MAJU"
    assert "row 3" in res.values["vendor_name"].note
    assert res.values["vendor_address"].value == "NO 9, JALAN DUA, 53200 KUALA LUMPUR."


def test_a_top_name_followed_by_its_own_registration_number_is_kept():
    lines = [_worded([("KEDAI", 150, 230), ("BUKU", 245, 320)], 10, 40), _worded([("(12345-K)", 200, 330)], 45, 75),
             _worded([("ABC", 100, 160), ("TRADING", 175, 300)], 80, 110), _worded([("(55555-A)", 200, 330)], 115, 145),
             _worded([("NO", 100, 140), ("9,", 150, 180), ("JALAN", 190, 280), ("DUA,", 300, 390)], 150, 180),
             _worded([("TEL:03-40210276", 150, 400)], 185, 215)]
    assert _rules(lines).values["vendor_name"].value == "KEDAI BUKU"
