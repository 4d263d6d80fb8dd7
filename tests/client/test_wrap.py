"""Word wrap, widths and scrolling by screen rows, with no terminal."""

from __future__ import annotations

import time

from chatroom.client.transcript import Transcript
from chatroom.client.wrap import for_display, width, wrap
from chatroom.protocol import Chat


def text_of(row) -> str:
    return "".join(t for _, t in row)


def message(text: str, nick: str = "bob") -> list[tuple[str, str]]:
    return [("class:time", "12:00 "), ("", f"<{nick}>"), ("", " "), ("class:text", text)]


def test_words_are_never_split_and_the_rows_hang_under_the_text():
    rows = [text_of(r) for r in wrap(message("the quick brown fox jumps over the lazy dog again"), 30)]
    assert rows == ["12:00 <bob> the quick brown", "            fox jumps over the", "            lazy dog again"]
    assert all(width(r) <= 30 for r in rows)


def test_a_url_that_fits_a_row_goes_to_the_next_row_whole():
    url = "https://example.org/a/rather/long/path"
    rows = [text_of(r) for r in wrap(message(f"see {url} now"), 52)]
    assert rows == ["12:00 <bob> see", f"            {url}", "            now"]


def test_a_word_longer_than_a_row_is_cut_only_where_it_must_be():
    word = "x" * 50
    rows = [text_of(r) for r in wrap(message(word), 30)]
    assert all(width(r) <= 30 for r in rows)
    assert "".join(r.strip() for r in rows).endswith(word) and rows[0].startswith("12:00 <bob> xxx")


def test_wide_characters_count_two_columns():
    rows = wrap(message("你好世界 " * 6), 40)  # 8 columns a word: 3 on the first row, 3 under it
    assert all(width(text_of(r)) <= 40 for r in rows) and len(rows) == 2
    assert width("你好") == 4 and width("é") == 1 and width("e\u0301") == 1


def test_emoji_sequences_are_shown_as_their_parts():
    assert for_display("👍🏽 ok") == "👍 ok"
    assert for_display("👨\u200d👩\u200d👧") == "👨👩👧"
    assert for_display("❤\ufe0f") == "❤" and for_display("plain") == "plain"
    t = Transcript()
    t.add(Chat(room="r", seq=1, ts=0.0, nick="bob", text="family 👨\u200d👩\u200d👧 thumbs 👍🏽"))
    assert text_of(t.lines[-1]).endswith("family 👨👩👧 thumbs 👍")


def test_scrolling_goes_by_screen_rows_and_stops_with_a_full_pane():
    t = Transcript()
    t.width = 20
    for n in range(10):
        t.add(Chat(room="r", seq=n + 1, ts=time.time(), nick="b", text=f"line {n} " + "word " * 6))
    rows = t.total_rows()
    assert rows > 10  # the messages wrap at 20 columns
    t.page_up(height=8)
    assert t.scroll == 7
    for _ in range(10):
        t.page_up(height=8)
    assert t.scroll == rows - 8 and t.at_top(8)
    top = t.screen(20, 8)
    assert len(top) == 8 and "line 0" in text_of(top[0]) + text_of(top[1])  # the oldest line on top of a full pane
    t.add(Chat(room="r", seq=11, ts=time.time(), nick="b", text="newer " * 5))
    assert t.screen(20, 8) == top  # the view holds still while new lines arrive
    t.scroll_by(-3, 8)
    assert t.scroll == rows - 8 + len(t.rows_of(t.lines[-1])) - 3
    t.to_bottom()
    assert "newer" in text_of(t.screen(20, 8)[-2]) or "newer" in text_of(t.screen(20, 8)[-1])


def test_a_day_changed_line_comes_before_the_first_live_line_of_a_new_day():
    t = Transcript()
    t.add(Chat(room="r", seq=1, ts=1_700_000_000.0, nick="b", text="late"))
    t.add(Chat(room="r", seq=2, ts=1_700_000_000.0 + 86_400, nick="b", text="next day"))
    texts = [text_of(line) for line in t.lines]
    assert any("day changed to" in x for x in texts[1:-1]) and texts[-1].endswith("next day")


def test_flags_and_emoji_sequences_are_shown_in_a_form_every_terminal_draws_alike():
    from wcwidth import wcswidth

    from chatroom.client.wrap import for_display, width

    assert for_display("vive la \U0001f1eb\U0001f1f7 !") == "vive la [FR] !"  # a flag: its letters
    assert for_display("\U0001f1ef\U0001f1f5\U0001f1e9") == "[JP][D]"  # a pair, then one alone
    assert for_display("\U0001f44d\U0001f3fd ok") == "\U0001f44d ok"  # a skin tone: removed
    assert for_display("\U0001f468\u200d\U0001f469\u200d\U0001f467") == "\U0001f468\U0001f469\U0001f467"
    for text in ("\U0001f1eb\U0001f1f7 and \U0001f468\u200d\U0001f469", "plain", "\u674e\u56db"):
        shown = for_display(text)
        # what we count, character by character (as prompt_toolkit draws), is what a
        # terminal draws for the whole string
        assert width(shown) == wcswidth(shown), shown
