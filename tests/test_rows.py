"""The one row rule (docvlm/rows.py): what shares a printed row, with and without a page slope."""

from __future__ import annotations

from docvlm.datamodel import Line
from docvlm.rows import (
    RowSettings,
    band_overlap,
    estimate_skew,
    group_rows,
    same_row,
    sort_reading_order,
)


def test_label_and_amount_share_a_row_and_the_next_row_stays_apart():
    boxes = [(10, 100, 80, 120), (300, 103, 360, 123), (10, 125, 80, 145), (300, 127, 360, 147)]
    assert group_rows(boxes) == [[0, 1], [2, 3]]


def test_overlap_is_measured_on_the_smaller_height():
    tall, small = (10, 100, 100, 160), (200, 140, 260, 155)  # small box inside the tall one's band
    assert same_row(tall, small)
    assert band_overlap((0, 10), (9, 20)) < 0.5  # a few pixels of overlap: separate rows
    assert group_rows([(0, 0, 50, 10), (60, 9, 110, 19)]) == [[0], [1]]


def test_stacked_boxes_never_form_one_row_unless_allowed():
    a, b = (10, 100, 200, 120), (12, 106, 198, 126)  # one above the other, same column
    assert group_rows([a, b]) == [[0], [1]]
    assert group_rows([a, b], settings=RowSettings(stacked_share=None)) == [[0, 1]]


def test_skewed_photo_rows_follow_the_slope():
    # two rows on a page tilted by 0.05: the right-hand amount sits lower by 0.05 * 400 = 20 px
    boxes = [(0, 100, 60, 115), (400, 120, 460, 135), (0, 120, 60, 135), (400, 140, 460, 155),
             (0, 140, 60, 155), (400, 160, 460, 175)]
    assert [2, 1] in [sorted(r, reverse=True) for r in group_rows(boxes)]  # level: the amount joins the next label
    skew = estimate_skew(boxes)
    assert abs(skew - 0.05) < 0.011
    assert group_rows(boxes, skew=skew) == [[0, 1], [2, 3], [4, 5]]


def test_alone_items_keep_a_row_of_their_own():
    boxes = [(0, 0, 50, 10), (60, 0, 110, 10)]
    assert group_rows(boxes, alone={1}) == [[0], [1]]


def test_sort_reading_order_reads_rows_left_to_right():
    lines = [Line(text=t, bbox_page_px=b) for t, b in
             (("b", (100, 0, 150, 10)), ("c", (0, 20, 50, 30)), ("a", (0, 1, 50, 11)))]
    assert [ln.text for ln in sort_reading_order(lines)] == ["a", "b", "c"]
