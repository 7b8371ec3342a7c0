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


def _rows(*texts: str, x0: float = 100, step: float = 35) -> list[Line]:
    """One OCR line per row, each word boxed 12 px apart (a normal printed space)."""
    lines = []
    for k, text in enumerate(texts):
        x, words = x0, []
        for w in text.split():
            words.append((w, x, x + 14 * len(w)))
            x += 14 * len(w) + 12
        lines.append(_worded(words, 10 + k * step, 40 + k * step))
    return lines


def test_a_number_glued_to_its_street_or_town_inside_one_box_is_split_and_the_note_says_so():
    res = _rules(_rows("KEDAI MAJU SDN BHD", "14JALAN MANIS 4,", "TAMAN SEGAR 56100KL", "TEL: 03-1234 5678"))
    f = res.values["vendor_address"]
    assert f.value == "14 JALAN MANIS 4, TAMAN SEGAR 56100 KL"
    assert f.raw == "14JALAN MANIS 4, TAMAN SEGAR 56100KL"  # raw keeps what was read
    assert "as '14 JA'" in f.note and "as '00 KL'" in f.note
    # numbers that are printed glued stay glued: a unit letter, a block code, a house number with its 'NO'
    res = _rules(_rows("KEDAI MAJU SDN BHD", "NO1.JALAN 47G, UPTOWN3 K3-113,JL SATU", "56100 KL", "TEL: 03-1234 5678"))
    assert res.values["vendor_address"].value == "NO1.JALAN 47G, UPTOWN3 K3-113,JL SATU 56100 KL"


def test_a_letter_o_inside_a_house_number_is_read_as_zero_only_between_digits():
    res = _rules(_rows("KEDAI MAJU SDN BHD", "NO 29O, JALAN AIR PANAS,", "53200, KUALA LUMPUR.", "TEL:03-40210276"))
    f = res.values["vendor_address"]
    assert f.value == "NO 290, JALAN AIR PANAS, 53200, KUALA LUMPUR."
    assert f.raw.startswith("NO 29O,")
    res = _rules(_rows("KEDAI MAJU SDN BHD", "NO 4O, LOT O1, JALAN SOO", "53200, KUALA LUMPUR.", "TEL:03-40210276"))
    assert res.values["vendor_address"].value.startswith("NO 4O, LOT O1, JALAN SOO")  # one digit: not enough


def test_a_company_row_that_leaves_a_bracket_open_continues_on_the_next_row():
    res = _rules(_rows("AIK HUAT HARDWARE", "ENTERPRISE (SETIA", "ALAM) SDN BHD", "(822737-X)", "NO. 17-G, JALAN INDAH,",
                       "40170 SHAH ALAM,", "TEL: 012-6651783"))
    assert res.values["vendor_name"].value == "AIK HUAT HARDWARE ENTERPRISE (SETIA ALAM) SDN BHD"
    res = _rules(_rows("BOOK MAJU (TAMAN", "DAYA INDAH) SDN BHD", "(822737-X)", "NO. 17-G, JALAN INDAH,",
                       "40170 SHAH ALAM,", "TEL: 012-6651783"))
    assert res.values["vendor_name"].value == "BOOK MAJU (TAMAN DAYA INDAH) SDN BHD"


def test_the_address_takes_the_town_and_state_rows_under_the_postcode_and_a_mall_row():
    res = _rules(_rows("RESTORAN MAJU", "NO.2-1-1 JALAN SETIA PRIMA", "U 13/Q 40170", "SHAH ALAM", "SELANGOR",
                       "TAX INVOICE"))
    assert res.values["vendor_address"].value == "NO.2-1-1 JALAN SETIA PRIMA U 13/Q 40170 SHAH ALAM SELANGOR"
    res = _rules(_rows("POPULAR BOOK CO. (M) SDN BHD", "(Company No. 113825-W)", "No 8, Jalan 7/118B, Desa Tun Razak",
                       "56000 Kuala Lumpur, Malaysia", "KL FESTIVAL CITY MALL", "Tel:03-41424540/20"))
    assert res.values["vendor_address"].value.endswith("56000 Kuala Lumpur, Malaysia KL FESTIVAL CITY MALL")
    # a short row under the postcode that is neither a state, nor a town above one, nor a building: not address
    res = _rules(_rows("RESTORAN MAJU", "NO 5, JALAN SATU,", "40170 SHAH ALAM", "SELAMAT DATANG", "CASH SALE"))
    assert res.values["vendor_address"].value == "NO 5, JALAN SATU, 40170 SHAH ALAM"


def test_a_branch_code_row_after_the_state_belongs_to_the_address():
    res = _rules(_rows("99 SPEED MART S/B", "LOT P.T. 2811, JALAN ANGSA,", "TAMAN BERKELEY", "41150 KLANG, SELANGOR",
                       "1317 TRILLIUM SG BESI", "GST ID. NO: 000181747712"))
    assert res.values["vendor_address"].value == \
        "LOT P.T. 2811, JALAN ANGSA, TAMAN BERKELEY 41150 KLANG, SELANGOR 1317 TRILLIUM SG BESI"
