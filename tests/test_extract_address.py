"""The address rule (`docvlm.extract.address`): the text repairs between the rows as read and the address as
printed, on self-made receipt lines (street words glued to the next word, look-alike letters in street words, a
period between address parts read for the comma it is). Every repair leaves `raw` as read and says so in the note.
"""

from __future__ import annotations

from docvlm.extract.address import comma_separators, repair_address_text, split_glued_street_words
from docvlm.extract.rules import build_page, extract_rules
from tests.extract_docs import receipt_lines


def _address(*texts: str):
    return extract_rules([build_page(receipt_lines(*texts), 0, 700, 900)]).values["vendor_address"]


def test_a_street_or_place_word_glued_to_the_next_word_is_split():
    assert split_glued_street_words("NO 8, JALANMAWAR 2, TMNCEMPAKA") == "NO 8, JALAN MAWAR 2, TMN CEMPAKA"
    assert split_glued_street_words("JLNSS2/10, 50450 KUALALUMPUR") == "JLN SS2/10, 50450 KUALA LUMPUR"
    # the word alone, a word that only starts with the same letters, and 'jalanan' stay as read
    assert split_glued_street_words("JALAN BUKIT, JALANAN LAMA, TAMANA") == "JALAN BUKIT, JALANAN LAMA, TAMANA"
    assert split_glued_street_words("MENARA BANDARAYA") == "MENARA BANDARAYA"  # 'bandar' starts words: not split


def test_a_period_between_address_parts_is_a_comma_but_initials_and_abbreviations_keep_theirs():
    assert comma_separators("NO 8, JALAN MAWAR. TAMAN BUNGA. 43000 KAJANG") == "NO 8, JALAN MAWAR, TAMAN BUNGA, 43000 KAJANG"
    # a part ending in a number or a letter of one or two characters is left alone: 'NO 8.' prints both ways
    assert comma_separators("NO 8. JALAN MAWAR 2. 43000 KAJANG") == "NO 8. JALAN MAWAR 2. 43000 KAJANG"
    assert comma_separators("LOT 12-B. JALAN BESI") == "LOT 12-B, JALAN BESI"
    assert comma_separators("TAMAN P. RAMLEE, JLN. MAWAR, P.T. 55 JALAN X") == "TAMAN P. RAMLEE, JLN. MAWAR, P.T. 55 JALAN X"
    assert comma_separators("43000 KAJANG, SELANGOR.") == "43000 KAJANG, SELANGOR."  # the final period stays


def test_look_alike_letters_in_street_words_are_repaired_only_where_the_word_stands():
    assert repair_address_text("10T 22, JAIAN MAWAR") == "LOT 22, JALAN MAWAR"
    assert repair_address_text("1OT B-5, JALAN SATU") == "LOT B-5, JALAN SATU"
    # a number that is not before a lot number, and a word that only contains the letters, stay as read
    assert repair_address_text("10T SHOP, JAIANA 5") == "10T SHOP, JAIANA 5"


def test_the_address_field_gets_the_repaired_text_and_raw_keeps_what_was_read():
    f = _address("KEDAI MAJU SDN BHD", "1OT 7, JALANMELATI 3,", "43000 KAJANG.", "SELANGOR", "TEL: 03-1234 5678")
    assert f.value == "LOT 7, JALAN MELATI 3, 43000 KAJANG, SELANGOR"
    assert f.raw == "1OT 7, JALANMELATI 3, 43000 KAJANG. SELANGOR"
    assert "read" in f.note and "'LOT" in f.note


def test_a_long_state_and_country_row_under_the_postcode_row_ends_the_address():
    f = _address("KEDAI MAJU SDN BHD", "NO 8, JALAN MAWAR,", "BANDAR BARU, 41050", "KLANG SELANGOR DARUL EHSAN, MALAYSIA",
                 "TEL: 03-1234 5678")
    assert f.value == "NO 8, JALAN MAWAR, BANDAR BARU, 41050 KLANG SELANGOR DARUL EHSAN, MALAYSIA"
    # a long row under the postcode row that is not a state (it holds a number) is not the address
    f = _address("KEDAI MAJU SDN BHD", "NO 8, JALAN MAWAR,", "BANDAR BARU, 41050", "OPEN DAILY 10 AM TO 10 PM MALAYSIA",
                 "TEL: 03-1234 5678")
    assert f.value == "NO 8, JALAN MAWAR, BANDAR BARU, 41050"
