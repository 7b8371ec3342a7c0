"""Amounts: the totals block. Every labelled amount gets a role (total, cash, change, rounding, tax, discount;
`label_role`); the total is chosen by evidence (`find_total`: label strength and the receipt's own arithmetic);
the printed tax lines are collected with their rates (`find_tax_lines`; evidence.settle_tax picks the tax).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from docvlm.extract.candidates import Evidence, Found, PageText, TaxLine
from docvlm.extract.labels import PATTERNS
from docvlm.extract.normalize import (
    AmountMatch,
    find_amounts,
    find_dates,
)
from docvlm.extract.page import (
    after_separator,
    find_labels,
    find_labels_in,
    found_at,
    label_note,
    row_box,
    span_box,
    value_candidates,
)


def amount_in(text: str, start: int, *, decimal_comma: bool | None) -> AmountMatch | None:
    """The first money-looking amount at or after `start` (prefers amounts with decimals; skips dates, times)."""
    tail = text[start:]
    masked = tail
    for d in find_dates(tail):
        masked = masked[: d.start] + " " * (d.end - d.start) + masked[d.end:]
    masked = re.sub(r"\d{1,2}:\d{2}(?::\d{2})?", lambda m: " " * len(m.group(0)), masked)
    masked = re.sub(r"\d+\s?%", lambda m: " " * len(m.group(0)), masked)
    amounts = [a for a in find_amounts(masked, decimal_comma=decimal_comma)]
    # an amount is money-looking when it has cents or a currency mark ("Rs 1939", "€ 50")
    with_dec = [a for a in amounts if a.has_decimals or a.currency and not re.match(r"\s\d", masked[a.end:])]
    pick = with_dec[0] if with_dec else None
    if pick is None:
        # the decimal point lost by OCR: "10 00" alone at the end of a value is 10.00
        m = re.search(r"(?<![\d.,-])(\d{1,6})[ -](\d{2})\s*$", masked)
        if m:
            fixed = f"{m.group(1)}.{m.group(2)}"
            return AmountMatch(m.group(0).strip(), m.start() + start, m.end() + start, Decimal(fixed), None, True,
                               f"read {m.group(0).strip()!r} as {fixed!r} (decimal point not read)", fixed)
        return None
    return replace(pick, start=pick.start + start, end=pick.end + start)


def find_amount_for(page: PageText, i: int, label_end: int, *, decimal_comma: bool | None) -> tuple[int, AmountMatch] | None:
    for j, at in value_candidates(page, i, label_end):
        at = after_separator(page.lines[j].text, at) if j == i else at
        a = amount_in(page.lines[j].text, at, decimal_comma=decimal_comma)
        if a is not None:
            return j, a
    return None


def money_found(page: PageText, j: int, a: AmountMatch, note: str, score: float) -> Found:
    raw_start, raw_end = a.start, a.end
    text = page.lines[j].text
    fixed = a.repaired_raw if a.repair else text[a.start:a.end]
    # keep a currency mark printed as one token with the number ("$8.20", "RM41.45"): that is what is printed;
    # a code set apart by a space ("RM 3.90") is a column mark, not part of the amount
    m = re.match(r"(?:RM|EUR|USD|MYR|GBP|INR|PLN|CHF|Rs\.?)\s+", text[raw_start:raw_end], re.IGNORECASE)
    if m:
        raw_start += m.end()
    trailing = re.search(r"\s*(?:€|EUR|USD|MYR|GBP|INR|PLN|CHF|zł|RM)?\s*$", text[raw_start:raw_end], re.IGNORECASE)
    raw_end = raw_start + (trailing.start() if trailing else raw_end - raw_start)
    printed = fixed[raw_start - a.start:raw_end - a.start].strip() if a.repair else None
    if a.repair:
        note = f"{note}; {a.repair}" if note else a.repair
    return Found(a.value, text[raw_start:raw_end].strip(), page.index, span_box(page.lines[j], raw_start, raw_end),
                 note, a.currency, score, printed=printed)


def find_labelled_amounts(pages: Sequence[PageText], label_field: str, *, exclude: str | None,
                          decimal_comma: bool | None) -> list[Found]:
    """Every amount next to a label of `label_field` (not on lines matching `exclude` labels), scored by strength."""
    out = []
    for page in pages:
        excluded = {i for i, *_ in find_labels(page, exclude)} if exclude else set()
        for i, start, end, rank in find_labels(page, label_field):
            if i in excluded and not stronger_than_exclusion(page.lines[i].text, label_field, exclude):
                continue
            hit = find_amount_for(page, i, end, decimal_comma=decimal_comma)
            if hit is None:
                continue
            j, a = hit
            label = page.lines[i].text[start:end]
            out.append(money_found(page, j, a, label_note(page, i, j, label), 10 - rank + page.index * 0.01 + i * 1e-4))
    return out


def stronger_than_exclusion(text: str, label_field: str, exclude: str | None) -> bool:
    """'Total (incl GST)' matches both 'total' and the 'tax' exclusion: the longer label wins."""
    if exclude is None:
        return True
    best_in = max((m.end() - m.start() for _, p in PATTERNS[label_field] for m in [p.search(text)] if m), default=0)
    best_out = max((m.end() - m.start() for _, p in PATTERNS[exclude] for m in [p.search(text)] if m), default=0)
    return best_in > best_out


TAX_RATE = re.compile(r"(?<![\d.,])(\d{1,2}(?:[.,]\d{1,2})?)\s?%")
"""A tax rate printed on a tax line ('GST 6%', 'BTW 21 %', 'MwSt 7,0%')."""


TAX_EXEMPT = re.compile(r"\b(exempt\w*|zero[\s-]*rated|tax[\s-]*free|non[\s-]*taxable|vrijgesteld|exon[ée]r\w*|"
                        r"steuerfrei)\b", re.IGNORECASE)
"""A tax line that says no tax is due."""


NOT_TAX_LINE = re.compile(r"\b(incl\w*|inkl\w*|ttc|termasuk|reg\w*\s*(?:no|id)|id\s*no|summary|no\.?\s*:)", re.IGNORECASE)
"""A line that names a tax but whose amount is not the tax: a total 'incl. GST', a tax registration number."""


def find_tax_lines(pages: Sequence[PageText], *, decimal_comma: bool | None) -> list[TaxLine]:
    """Every printed tax line: the amount next to a tax label, its rate, exempt or not (see evidence.settle_tax)."""
    out: list[TaxLine] = []
    for page in pages:
        excluded = {i for i, *_ in find_labels(page, "subtotal")}
        for i, start, end, rank in find_labels(page, "tax"):
            text = page.lines[i].text
            if i in excluded and not stronger_than_exclusion(text, "tax", "subtotal"):
                continue
            if NOT_TAX_LINE.search(text) or find_labels_in(page, i, "total_strong"):
                continue
            rate_m = TAX_RATE.search(text)
            rate = Decimal(rate_m.group(1).replace(",", ".")) if rate_m else None
            exempt = bool(TAX_EXEMPT.search(text)) or rate == 0
            hit = find_amount_for(page, i, end, decimal_comma=decimal_comma)
            label = label_note(page, i, i, text[start:end])
            if hit is None:
                if exempt:
                    zero = found_at(page, i, start, end, Decimal("0.00"), note=f"{label}; exempt, no amount printed",
                                  score=10 - rank)
                    out.append(TaxLine(zero, rate, True))
                continue
            j, a = hit
            out.append(TaxLine(money_found(page, j, a, label_note(page, i, j, text[start:end]), 10 - rank + i * 1e-4),
                               rate, exempt))
    return out


TOTAL_STRENGTH = {"total_strong": 3, "total": 2, "total_weak": 1}
"""Label strength of an amount offered as the total: strong (payable, due, incl. tax, paid), plain, weak."""


@dataclass(frozen=True)
class RoleAmount:
    """An amount next to a label, with the part it plays in the receipt's arithmetic."""

    found: Found
    role: str  # total, cash, change, rounding, tax, discount
    strength: int  # TOTAL_STRENGTH of its label (totals only)
    label: str
    row: int
    void: bool = False
    line_text: str = ""


def label_role(text: str) -> tuple[str, int, re.Match[str]] | None:
    """What a line's label says its amount is: (role, strength, label match), strongest reading first."""
    def first(field_name: str) -> re.Match[str] | None:
        hits = [m for _, p in PATTERNS[field_name] for m in [p.search(text)] if m]
        return max(hits, key=lambda m: (m.end() - m.start(), -m.start())) if hits else None

    for role, field_name in (("change", "change"),):
        m = first(field_name)
        if m and not first("total_strong"):
            return role, 0, m
    strong, weak = first("total_strong"), first("total_weak")
    if weak and (not strong or weak.end() - weak.start() >= strong.end() - strong.start()
                 and not re.search(r"incl|ttc|inkl|termasuk", strong.group(0), re.I)):
        return "total", TOTAL_STRENGTH["total_weak"], weak
    if strong:
        return "total", TOTAL_STRENGTH["total_strong"], strong
    for role in ("cash", "rounding", "discount"):
        m = first(role)
        if m:
            return role, 0, m
    plain = first("total")
    if plain and not first("not_total"):
        return "total", TOTAL_STRENGTH["total"], plain
    m = first("tax")
    if m:
        return "tax", 0, m
    return None


def collect_role_amounts(pages: Sequence[PageText], *, decimal_comma: bool | None) -> list[RoleAmount]:
    """Every labelled amount of the totals block, paired by printed row (see `find_amount_for`)."""
    out = []
    for page in pages:
        void_rows = {page.row_of(i) for i, *_ in find_labels(page, "void")}
        for i, line in enumerate(page.lines):
            got = label_role(line.text)
            at, start = i, 0  # the line whose text the label ends in, and where that text starts in the join
            nxt = _label_continuation(page, i)
            if nxt is not None:
                # a label split by OCR into two boxes ('Total' | 'Payable:'): read it whole when that says more
                joined = label_role(f"{line.text} {page.lines[nxt].text}")
                if joined is not None and joined[2].end() > len(line.text) + 1 and (
                        got is None or joined[1] > got[1] or joined[0] != got[0]):
                    got, at, start = joined, nxt, len(line.text) + 1
            if got is None:
                continue
            role, strength, m = got
            hit = find_amount_for(page, at, m.end() - start, decimal_comma=decimal_comma)
            if hit is None:
                continue
            j, a = hit
            r = page.row_of(i)
            found = money_found(page, j, a, "", 0.0)
            out.append(RoleAmount(found, role, strength, m.group(0), r, r in void_rows or r - 1 in void_rows,
                                  line.text))
    return out


def _label_continuation(page: PageText, i: int) -> int | None:
    """The box right after line i on its row, close enough to continue its words and holding no amount."""
    row = page.rows[page.row_of(i)]
    k = row.index(i)
    if k + 1 >= len(row):
        return None
    a, b = page.lines[i].bbox_page_px, page.lines[row[k + 1]].bbox_page_px
    text = page.lines[row[k + 1]].text
    if b[0] - a[2] > 2.0 * (a[3] - a[1]) or re.search(r"\d", text):
        return None
    return row[k + 1]


@dataclass
class TotalCandidate:
    """An amount offered as the total, with what speaks for and against it (see `find_total`)."""

    found: Found
    strength: int = -1  # TOTAL_STRENGTH of its strongest label; 0: only printed; -1: not yet labelled
    label: str | None = None  # how it was labelled ('label 'TOTAL' on row 12'), for the note
    votes: list[str] = field(default_factory=list)  # arithmetic that explains it ('cash 10.00 - change 1.20')
    void: bool = False  # printed on a voided row
    roles: list[RoleAmount] = field(default_factory=list)  # the labelled amounts it was read as
    doubt: str | None = None  # why it may be another amount (a tax, a misread)

    def score(self) -> int:
        """2 x label strength, 2 per arithmetic vote, 1 per weak vote (items sum, cash with no change), -10 void,
        -5 doubt."""
        weak_votes = sum(v.startswith(WEAK_VOTES) for v in self.votes)
        return 2 * self.strength + 2 * (len(self.votes) - weak_votes) + weak_votes \
            - (VOID_PENALTY if self.void else 0) - (DOUBT_PENALTY if self.doubt else 0)


WEAK_VOTES = ("sum of", "cash paid")
"""Votes that count once, not twice: the items' sum (items are read less surely) and cash paid with no change."""
VOID_PENALTY = 10
"""A total on a voided row loses to any other candidate."""
DOUBT_PENALTY = 5
"""A doubtful total (one decimal where the page prints two, a tax smaller than an item) loses to a sure one."""
ROUNDING_LIMIT = 1
"""A rounding adjustment is less than one unit of the currency."""
CASH_ROUNDING_STEP = Decimal("0.05")
"""Cash rounding aims at multiples of this; the adjustment's other sign is tried only when it lands there."""


def _by_role(roles: Sequence[RoleAmount]) -> dict[str, list[RoleAmount]]:
    by = {k: [r for r in roles if r.role == k and not r.void] for k in ("total", "cash", "change", "rounding", "tax",
                                                                         "discount")}
    # "amount paid" is the total on some receipts and the money handed over on others: it votes as cash too
    by["cash"] += [r for r in by["total"] if re.search(r"paid", r.label, re.I)]
    return by


def _arithmetic(by: dict[str, list[RoleAmount]], subtotal: Found | None, tax: Found | None,
                items_sum: Decimal | None) -> list[tuple[Decimal, str, int]]:
    """(value, how, lent label strength) of every sum the receipt's own amounts make."""
    rounding = [r.found.value for r in by["rounding"] if abs(r.found.value) < ROUNDING_LIMIT]  # type: ignore[arg-type]
    weak = [r for r in by["total"] if r.strength == TOTAL_STRENGTH["total_weak"]]
    taxes = [r.found.value for r in by["tax"]] + ([tax.value] if tax is not None else [])
    discounts = [abs(r.found.value) for r in by["discount"]]  # type: ignore[arg-type]
    sums: list[tuple[Decimal, str, int]] = []
    for c_ in by["cash"]:
        for ch in by["change"]:
            sums.append((c_.found.value - ch.found.value, f"cash {c_.found.raw} - change {ch.found.raw}", 0))  # type: ignore[operator]
    for base in by["total"]:
        for adj in rounding:
            if adj:
                # receipts print the adjustment with either sign convention; only a printed result counts
                lent = base.strength + 1 if base.strength != TOTAL_STRENGTH["total_weak"] else 2
                sums.append((base.found.value + adj, f"{base.label!r} {base.found.raw} + rounding {adj}", lent))  # type: ignore[operator]
                flipped = base.found.value - adj  # type: ignore[operator]
                if flipped % CASH_ROUNDING_STEP == 0 and base.found.value % CASH_ROUNDING_STEP != 0:  # type: ignore[operator]
                    sums.append((flipped, f"{base.label!r} {base.found.raw} - rounding {adj}", lent))
    for sub in [r.found for r in weak] + ([subtotal] if subtotal is not None else []):
        for t in taxes or [Decimal(0)]:
            for d in [Decimal(0), *discounts]:
                for adj in [Decimal(0), *rounding]:
                    if not (t or d or adj):
                        continue
                    how = f"subtotal {sub.raw}" + (f" + tax {t}" if t else "") + (f" - discount {d}" if d else "") \
                        + (f" + rounding {adj}" if adj else "")
                    sums.append((sub.value + t - d + adj, how, 0))  # type: ignore[operator]
    if items_sum is not None and items_sum > 0:
        sums.append((items_sum, f"sum of the line items {items_sum}", 0))
    return sums


def _doubt(c: TotalCandidate, two_decimals: bool, largest_item: Decimal) -> str | None:
    if two_decimals and re.search(r"(?<![.,\d])\d+[.,]\d$", c.found.raw):
        return "one decimal where the page prints two (a misread amount)"
    if c.strength > 0 and largest_item and c.found.value < largest_item and re.search(  # type: ignore[operator]
            r"gst|tax|vat|sst|btw|tva|mwst|cukai", " ".join(r.line_text for r in c.roles), re.I):
        return f"names a tax and is smaller than a line item ({largest_item}): the tax, not the total"
    return None


def find_total(pages: Sequence[PageText], *, decimal_comma: bool | None, subtotal: Found | None = None,
               tax: Found | None = None, items_sum: Decimal | None = None,
               item_amounts: Sequence[Decimal] = ()) -> tuple[Found | None, list[tuple[str, str]]]:
    """The amount to pay, chosen by evidence: label strength, then arithmetic votes.

    Every amount offered as a total scores 2 x its label strength (strong 3, plain 2, weak 1) and gets votes
    from the receipt's own arithmetic (`_arithmetic`): cash - change, subtotal + tax - discount + rounding, a
    labelled total plus a rounding adjustment (this one also lends the base total's label strength), the sum of
    the line items. A voided row loses. The chosen total carries its votes as evidence, and its note lists its
    label, row and votes, and the runner-up. When only a weak total (a subtotal) exists it is `inferred`, with a
    warning.
    """
    notes: list[tuple[str, str]] = []
    roles = [r for r in collect_role_amounts(pages, decimal_comma=decimal_comma) if r.found.value is not None]
    by = _by_role(roles)
    cands: dict[Decimal, TotalCandidate] = {}

    def cand(value: Decimal, found: Found, strength: int, why: str, role: RoleAmount | None) -> TotalCandidate:
        c = cands.setdefault(value, TotalCandidate(found))
        if role is not None:
            c.roles.append(role)
        if strength > c.strength:
            c.found, c.strength, c.label = found, strength, why
        return c

    for r in by["total"]:
        if r.found.value >= 0:  # type: ignore[operator]
            cand(r.found.value, r.found, r.strength, f"label {r.label!r} on row {r.row + 1}", r)  # type: ignore[arg-type]
    for r in roles:
        if r.void and r.role == "total" and r.found.value in cands:
            cands[r.found.value].void = True  # type: ignore[index]
    # arithmetic: which printed amounts do the receipt's own sums explain?
    printed = _printed_amounts(pages, decimal_comma=decimal_comma)
    seen_votes: set[tuple[Decimal, str]] = set()
    for value, how, lent in _arithmetic(by, subtotal, tax, items_sum):
        if value <= 0 or (value, how) in seen_votes:
            continue
        seen_votes.add((value, how))
        if value in cands:
            c = cands[value]
        elif value in printed and (lent or not how.startswith("sum of")):
            c = cand(value, printed[value], 0, "printed amount (no total label read)", None)
        else:
            continue
        c.votes.append(how)
        if lent > c.strength:
            c.strength = lent
            c.label = (c.label or "") + f"; takes the label of {how.split(' + ')[0]}"
    for c_ in by["cash"]:
        if c_.role == "cash" and c_.found.value in cands and not by["change"]:
            cands[c_.found.value].votes.append(f"cash paid {c_.found.raw} (no change)")  # type: ignore[index]
    if not cands:
        guess = _unlabelled_total(pages, subtotal, tax, decimal_comma=decimal_comma)
        if guess is not None:
            guess = replace(guess, score=0.0, status="inferred")
            return guess, [("no_total_label", f"no amount next to a 'total' label; took {guess.raw} ({guess.note})")]
        return None, [("missing_total", "no amount next to a 'total' label")]

    two_decimals = any(re.search(r"[.,]\d{2}$", c.found.raw) for c in cands.values())
    largest_item = max(item_amounts, default=Decimal(0))
    for c in cands.values():
        c.doubt = _doubt(c, two_decimals, largest_item)

    ranked = sorted(cands.items(), key=lambda kv: (kv[1].score(), len(kv[1].votes), kv[0]), reverse=True)
    value, best = ranked[0]
    top = best.score()
    ties = [(v, c) for v, c in ranked[1:] if c.score() == top and len(c.votes) == len(best.votes) and v != value]
    runner = ranked[1] if len(ranked) > 1 else None
    note = f"{best.label}" + (f"; votes: {'; '.join(best.votes)}" if best.votes else "; no arithmetic vote")
    if best.found.note:
        note += f"; {best.found.note}"
    if best.void:
        note += "; on a voided row"
    if best.doubt:
        note += f"; doubtful: {best.doubt}"
    if runner is not None:
        note += f"; beat {runner[1].found.raw} ({runner[1].label}, score {runner[1].score()} vs {top})"
    if ties:
        notes.append(("two_totals", "different amounts under equally strong total evidence: "
                      + ", ".join([best.found.raw] + [c.found.raw for _, c in ties])
                      + f"; took {best.found.raw} (the largest)"))
    else:
        rivals = [c for v, c in ranked[1:] if c.strength >= best.strength and not c.void
                  and any(r.role == "total" for r in c.roles)]
        if rivals:
            notes.append(("two_totals", "different amounts under equally strong total labels: "
                          + ", ".join([best.found.raw] + [c.found.raw for c in rivals])
                          + f"; took {best.found.raw} by its votes ({'; '.join(best.votes) or 'none'})"))
    if any(r.void for r in roles if r.role == "total"):
        voided = sorted({r.found.raw for r in roles if r.role == "total" and r.void})
        notes.append(("voided_total", f"a voided total was skipped: {', '.join(voided)}"))
    f = best.found
    for vote in best.votes:
        f = f.with_evidence(Evidence("repeat" if vote.startswith("cash paid") else "arithmetic", vote))
    if best.strength > 0 and best.label:
        f = f.with_evidence(Evidence("label", best.label))
    if best.void:
        f = f.with_evidence(Evidence("doubt", "on a voided row"))
    if best.doubt:
        f = f.with_evidence(Evidence("doubt", best.doubt))
    if ties:
        f = f.with_evidence(Evidence("doubt", "another amount has equally strong total evidence"))
    status = None
    if best.strength == TOTAL_STRENGTH["total_weak"] and not any(
            c.strength > TOTAL_STRENGTH["total_weak"] for c in cands.values()):
        nonzero_tax = [t for t in [r.found.value for r in by["tax"]] + ([tax.value] if tax is not None else []) if t]
        if nonzero_tax and not [v for v in best.votes if not v.startswith("sum of")]:
            sub = f.value + nonzero_tax[0]  # type: ignore[operator]
            return None, [("missing_total", f"no total label was read; the subtotal {f.raw} plus tax "
                           f"{nonzero_tax[0]} = {sub} is not printed, so no total is given")]
        status = "inferred"
        f = f.with_evidence(Evidence("doubt", "only a subtotal was read, offered as the total"))
        notes.append(("only_subtotal", f"no total label was read, only a subtotal ({f.raw}): it is returned as the "
                      "total, inferred"))
    return replace(f, note=note, score=float(top), status=status), notes


def _printed_amounts(pages: Sequence[PageText], *, decimal_comma: bool | None) -> dict[Decimal, Found]:
    """Every amount with cents printed on the pages (the lowest printing of each value)."""
    out: dict[Decimal, Found] = {}
    for page in pages:
        for j, line in enumerate(page.lines):
            for a in find_amounts(line.text, decimal_comma=decimal_comma):
                if a.has_decimals and a.value > 0:
                    out[a.value] = money_found(page, j, a, "", 0.0)
    return out


def _unlabelled_total(pages: Sequence[PageText], subtotal: Found | None, tax: Found | None, *,
                      decimal_comma: bool | None) -> Found | None:
    """No readable total label: subtotal + tax when printed, else the amount printed most often (receipts print
    the payable amount as total and again as the cash paid), at least twice."""
    printed: dict[Decimal, list[Found]] = {}
    for page in pages:
        for j, line in enumerate(page.lines):
            a = amount_in(line.text, 0, decimal_comma=decimal_comma)
            if a is not None and a.value > 0:
                printed.setdefault(a.value, []).append(money_found(page, j, a, "", 0.0))
    if subtotal is not None and tax is not None:
        value = subtotal.value + tax.value  # type: ignore[operator]
        if value in printed:
            f = printed[value][0]
            return Found(f.value, f.raw, f.page, f.bbox_page_px, "no total label: subtotal + tax", f.currency)
    if not printed:
        return None
    # printed on at least two rows (a unit price and its line amount share one row; a total and the cash paid
    # do not)
    def rows_of(hits: list[Found]) -> int:
        return len({(h.page, round(h.bbox_page_px[1] / max(1.0, h.bbox_page_px[3] - h.bbox_page_px[1]))) for h in hits})

    value, hits = max(printed.items(), key=lambda kv: (rows_of(kv[1]), kv[0]))
    if rows_of(hits) < 2:
        return None
    # the amount to pay is the largest amount printed, bar the cash handed over and the change
    paid_rows = {(p.index, p.row_of(i)) for p in pages for i, *_ in find_labels(p, "not_total")}
    others = [v for v, fs in printed.items()
              if any((f.page, _row_at(pages, f)) not in paid_rows for f in fs)]
    if others and value < max(others):
        return None
    f = hits[0]
    return Found(f.value, f.raw, f.page, f.bbox_page_px, f"no total label: printed {len(hits)} times", f.currency)


def _row_at(pages: Sequence[PageText], found: Found) -> int:
    """Row index of the line whose box holds `found` (its page's row nearest to the box's vertical centre)."""
    page = next(p for p in pages if p.index == found.page)
    cy = (found.bbox_page_px[1] + found.bbox_page_px[3]) / 2
    return min(range(len(page.rows)), key=lambda r: abs((row_box(page, r)[1] + row_box(page, r)[3]) / 2 - cy))


def is_amount(token: str) -> bool:
    return bool(re.fullmatch(r"\d{1,3}(?:[.,]\d{3})*[.,]\d{2}", token))


def decimal_comma_hint(text: str) -> bool | None:
    """True when the document writes amounts as 1.234,56 (more decimal commas than decimal points)."""
    commas = len(re.findall(r"\d,\d{2}(?!\d)", text))
    points = len(re.findall(r"\d\.\d{2}(?!\d)", text))
    if commas == points:
        return None
    return commas > points

