import codecs

import pytest

from streamia_movies.media.subtitles import InvalidSubtitle, decode_subtitle, to_webvtt

SPANISH_SRT = (
    "1\r\n00:00:01,000 --> 00:00:04,500\r\n¡Acción! ¿Dónde está el niño?\r\n\r\n"
    "2\r\n00:00:05,250 --> 00:00:08,000\r\nMañana será otro día,\r\nseñor.\r\n"
)


def _cue_lines(vtt: str) -> list[str]:
    return [line for line in vtt.splitlines() if line]


def test_an_srt_file_becomes_webvtt_with_dotted_timestamps_and_no_numbers():
    vtt = to_webvtt(SPANISH_SRT.encode("utf-8"), "film.srt")

    assert vtt.source_format == "srt"
    assert vtt.cues == 2
    assert _cue_lines(vtt.text) == [
        "WEBVTT",
        "00:00:01.000 --> 00:00:04.500",
        "¡Acción! ¿Dónde está el niño?",
        "00:00:05.250 --> 00:00:08.000",
        "Mañana será otro día,",
        "señor.",
    ]


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_a_latin1_or_windows1252_spanish_srt_comes_out_as_utf8(encoding):
    vtt = to_webvtt(SPANISH_SRT.encode(encoding), "film.srt")

    assert "¡Acción! ¿Dónde está el niño?" in vtt.data.decode("utf-8")
    assert "señor." in vtt.text


def test_a_short_latin1_file_with_umlauts_and_enye_is_not_read_as_central_european():
    raw = "1\n00:00:01,000 --> 00:00:02,000\nPingüino, cigüeña, año\n".encode("latin-1")

    assert "Pingüino, cigüeña, año" in to_webvtt(raw, "a.srt").text


def test_windows1252_curly_quotes_and_euro_sign_survive():
    raw = "1\n00:00:01,000 --> 00:00:02,000\n“La canción” cuesta 5 €\n".encode("cp1252")

    assert "“La canción” cuesta 5 €" in to_webvtt(raw, "a.srt").text


@pytest.mark.parametrize(
    "bom,encoding",
    [
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
)
def test_a_byte_order_mark_decides_the_encoding_and_is_dropped(bom, encoding):
    raw = bom + SPANISH_SRT.encode(encoding)

    vtt = to_webvtt(raw, "film.srt")

    assert vtt.text.startswith("WEBVTT\n")
    assert "\ufeff" not in vtt.text
    assert "¡Acción!" in vtt.text


def test_decode_reports_the_detected_encoding():
    assert decode_subtitle("acción".encode())[1] == "utf-8"
    assert decode_subtitle("1\n00:00:01,000 --> 00:00:02,000\nacción\n".encode("latin-1"))[1] in (
        "cp1252",
        "latin_1",
        "iso8859_15",
    )


def test_a_valid_webvtt_file_is_kept_with_its_cue_settings_and_notes():
    raw = (
        "WEBVTT - Película\n\nNOTE traducido a mano\n\n"
        "intro\n00:01.000 --> 00:04.000 align:start line:10%\n<i>Hola</i> & adiós\n"
    ).encode()

    vtt = to_webvtt(raw, "film.vtt")

    assert vtt.source_format == "vtt"
    assert vtt.cues == 1
    assert "00:01.000 --> 00:04.000 align:start line:10%" in vtt.text
    assert "intro" in vtt.text


def test_a_file_named_srt_holding_webvtt_is_accepted_as_webvtt():
    raw = b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhello\n"

    assert to_webvtt(raw, "x.srt").source_format == "vtt"


def test_a_cue_whose_text_is_a_number_keeps_it():
    raw = b"7\n00:00:01,000 --> 00:00:02,000\n42\n"

    assert _cue_lines(to_webvtt(raw, "x.srt").text)[1:] == ["00:00:01.000 --> 00:00:02.000", "42"]


def test_srt_without_cue_numbers_and_with_short_fractions_converts():
    raw = b"0:00:01,5 --> 0:00:02,25\nhello\n"

    assert "00:00:01.500 --> 00:00:02.250" in to_webvtt(raw, "x.srt").text


def test_srt_markup_webvtt_lacks_is_removed_and_stray_symbols_are_escaped():
    raw = b'1\n00:00:01,000 --> 00:00:02,000\n{\\an8}<font color="#fff"><i>a</i></font> < b & c -> d\n'

    text = to_webvtt(raw, "x.srt").text

    assert "<i>a</i> &lt; b &amp; c -&gt; d" in text
    assert "font" not in text and "\\an8" not in text


@pytest.mark.parametrize(
    "raw,filename",
    [
        (b"", "x.srt"),
        (b"   \n\n", "x.vtt"),
        (b"1\nnot a timing line\nhello\n", "x.srt"),
        (b"1\n00:00:05,000 --> 00:00:01,000\nends before it starts\n", "x.srt"),
        (b"1\n00:61:00,000 --> 00:62:00,000\nminutes out of range\n", "x.srt"),
        (b"WEBVTT\n\n00:01.000 -> 00:02.000\nbad arrow\n", "x.vtt"),
        (b"WEBVTT\n\n00:00:01,000 --> 00:00:02,000\ncomma in vtt\n", "x.vtt"),
        (b"WEBVTT\n", "x.vtt"),
        (b"WEBVTTX\n\n00:01.000 --> 00:02.000\nx\n", "x.vtt"),
        (b"\x00\x01\x02binary\x00junk" * 10, "x.srt"),
        (b"1\n00:00:01,000 --> 00:00:02,000\nfine\n", "x.txt"),
        (b"1\n00:00:01,000 --> 00:00:02,000\nfine\n", None),
    ],
)
def test_malformed_or_unsupported_files_are_refused_with_a_400(raw, filename):
    with pytest.raises(InvalidSubtitle) as caught:
        to_webvtt(raw, filename)

    assert caught.value.status == 400
    assert caught.value.code == "invalid_subtitle"


def test_webvtt_cue_text_keeps_webvtt_tags_and_escapes_any_other_markup():
    raw = (
        b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n"
        b"<v Ana><i>Hola</i></v> <script>alert(1)</script><img src=x onerror=alert(1)>\n"
        b"<c.loud>fin</c> <lang es>s\xc3\xad</lang> & <b>ok</b>\n"
    )
    text = to_webvtt(raw, "x.vtt").data.decode()
    assert "<v Ana><i>Hola</i></v>" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<c.loud>fin</c> <lang es>sí</lang> &amp; <b>ok</b>" in text
    assert "00:00:01.000 --> 00:00:02.000" in text  # the timing line is not cue text
