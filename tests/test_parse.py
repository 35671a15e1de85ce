"""What the parser must get right, one behaviour per test, on hand-written mail in tests/mail/.

Each test asserts the outcome a user relies on: the customer's sentence is in the new text
and the quoted one is not, attachment names and sizes, the date in UTC, order numbers as an
exact tuple, why a message counts as automated, the language code.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage as StdMessage
from pathlib import Path

import pytest

from supportcli.parse import (
    decode_bytes,
    detect_language,
    find_order_numbers,
    header_text,
    html_to_text,
    normalize_subject,
    parse,
    release_language_model,
    split_reply,
)
from supportcli.records import Attachment, Message, ParseFailure, RawMessage

MAIL = Path(__file__).parent / "mail"


def load(name: str, received: datetime | None = None) -> Message:
    raw = RawMessage("test", name, (MAIL / name).read_bytes(), (), received)
    message = parse(raw)
    assert isinstance(message, Message), message
    return message


# --- headers and charsets ------------------------------------------------------------------


def test_rfc2047_utf8_q_subject_folded_over_two_lines_and_from_name():
    m = load("rfc2047_utf8_q.eml")
    assert m.subject == "Rückerstattung für Bestellung #10234 – dringend"
    assert m.sender_name == "Jürgen Müller"
    assert m.sender_addr == "juergen.mueller@example.de"


def test_rfc2047_b_subject_and_iso_8859_1_q_from_name():
    m = load("rfc2047_b_latin1.eml")
    assert m.subject == "Où est ma commande ?"
    assert m.sender_name == "Françoise Léger"
    assert "je n'ai toujours pas reçu ma commande" in m.text_new  # quoted-printable body


def test_rfc2231_attachment_filename():
    m = load("rfc2231_filename.eml")
    assert m.attachments == (Attachment("Rücksendeschein №5.pdf", "application/pdf", 78),)
    assert "Rücksendeschein für die kaputte Teekanne" in m.text_new


def test_body_declared_us_ascii_but_windows_1252():
    m = load("charset_ascii_is_cp1252.eml")
    assert "Das ist ärgerlich" in m.text_new
    assert "Die Rechnung über 24,90 € liegt bei" in m.text_new
    assert "„Earl Grey Supreme“" in m.text_new
    assert "\ufffd" not in m.text_new


def test_body_declared_utf8_but_windows_1252():
    m = load("charset_utf8_is_cp1252.eml")
    assert "I ordered the “Café Crème” blend for €18" in m.text_new
    assert "décaféiné" in m.text_new
    assert "\ufffd" not in m.text_new


def test_unknown_charset_name_falls_back_without_crashing():
    m = load("charset_unknown.eml")
    assert "gives me an error page — “parcel not found”" in m.text_new


def test_raw_8bit_headers_utf8_subject_and_windows_1252_from():
    m = load("raw_8bit_headers.eml")
    assert m.subject == "Rückfrage zur Lieferung – Größe M"
    assert m.sender_name == "Zoë Müller"
    assert m.sender_addr == "zoe.mueller@example.de"


def test_raw_utf8_display_name_in_from():
    assert load("reply_spanish.eml").sender_name == "Lucía Fernández"


def test_encoded_display_name_with_a_comma_keeps_the_address():
    msg = StdMessage()
    msg["From"] = "=?utf-8?q?M=C3=BCller=2C_J=C3=BCrgen?= <j.mueller@example.de>"
    msg["Subject"] = "x"
    msg.set_content("Hello there, where is my parcel?")
    m = parse(RawMessage("test", "comma", msg.as_bytes()))
    assert isinstance(m, Message)
    assert (m.sender_name, m.sender_addr) == ("Müller, Jürgen", "j.mueller@example.de")


def test_decode_bytes_never_raises_and_prefers_declared_charset():
    assert decode_bytes("Grüße".encode("iso-8859-15"), "iso-8859-15") == "Grüße"
    assert decode_bytes("Grüße".encode(), "no-such-charset") == "Grüße"
    assert decode_bytes(b"caf\xe9", None) == "café"
    assert decode_bytes("Привет, мир! Где мой заказ?".encode("cp1251"), "windows-1251") == (
        "Привет, мир! Где мой заказ?"
    )
    assert isinstance(decode_bytes(bytes(range(256)), "utf-8"), str)


def test_header_text_decodes_encoded_words():
    msg = StdMessage()
    msg["Subject"] = "=?utf-8?b?R3LDtsOfZQ==?= M"
    assert header_text(msg, "subject") == "Größe M"
    assert header_text(msg, "x-missing") == ""


# --- text: plain, HTML, alternative ---------------------------------------------------------


def test_html_only_becomes_readable_text_without_style_or_script():
    m = load("html_only.eml")
    assert m.is_html
    assert "two items arrived broken & the box was soaked." in m.text_new
    assert "Photos are on the way." in m.text_new.splitlines()  # <br> is a line break
    assert "Café glass mug" in m.text_new and "€" in m.text_new  # entities
    assert "Matcha whisk" in m.text_new  # table cells kept
    assert "Could you send replacements? <urgent>" in m.text_new
    for leaked in ("SCRIPT_SHOULD_NOT_APPEAR", "font-family", "hidden-css-rule", "<p>", "<td>"):
        assert leaked not in m.text_new + m.text_quoted


def test_html_to_text_table_and_line_breaks():
    text = html_to_text("<p>a<br>b</p><table><tr><td>x</td><td>y</td></tr></table>")
    assert text.splitlines()[:2] == ["a", "b"]
    assert "x" in text and "y" in text


def test_multipart_alternative_prefers_the_plain_part():
    m = load("alternative.eml")
    assert not m.is_html
    assert "(plain part)" in m.text_new
    assert "(HTML part)" not in m.text_new


# --- replies: new text, quoted history, signature -----------------------------------------


@pytest.mark.parametrize(
    ("name", "new", "quoted"),
    [
        (
            "reply_gmail.eml",  # "On … <x@y>\nwrote:" wrapped over two lines, as Gmail does
            'The tracking page has said "label created" for six days now. Is the parcel lost?',
            "good news: your order 10240 has shipped",
        ),
        (
            "reply_apple_iphone.eml",  # "> On … wrote:" inside the quote, after the signature
            "Still no refund on my card. You promised it within five working days.",
            "we have approved the refund for the broken kettle",
        ),
        (
            "reply_outlook.eml",  # "____" line, then From:/Sent:/To:/Subject:
            "Could you please resend the invoice with our VAT number on it? "
            "Our accounts team needs it today.",
            "please find the invoice for your order attached",
        ),
        (
            "reply_outlook_original.eml",  # "-----Original Message-----"
            "We would like to order 40 tins of the breakfast blend at the wholesale price.",
            "attached is our wholesale price list for cafes",
        ),
        (
            "reply_german.eml",  # "Am … schrieb …:"
            "Die Lieferung ist immer noch nicht angekommen. Bitte prüfen Sie das dringend.",
            "Ihre Bestellung wurde heute verschickt.",
        ),
        (
            "reply_german_outlook.eml",  # Von:/Gesendet:/An:/Betreff:
            "Ich möchte die Bestellung bitte komplett stornieren, "
            "solange sie noch nicht versendet wurde.",
            "wir haben Ihre Anfrage erhalten",
        ),
        (
            "reply_french.eml",  # "Le … a écrit :"
            "Le colis est arrivé mais il manque la boîte de thé vert. "
            "Merci de l'envoyer rapidement.",
            "votre commande est partie ce matin.",
        ),
        (
            "reply_spanish.eml",  # "El … escribió:"
            "Quiero devolver la tetera porque llegó rota. ¿Cómo lo hago?",
            "su pedido ha sido enviado hoy.",
        ),
        (
            "reply_gmail_html.eml",  # HTML only: gmail_quote <blockquote>
            "Still waiting for the refund, it is not on my card yet.\n\nAnna",
            "we have approved your refund of 18,50 €.",
        ),
        (
            "reply_outlook_html.eml",  # HTML only: <b>From:</b> … <b>Sent:</b> block
            "Please cancel the order, it was a duplicate.",
            "Good news, your parcel is on its way.",
        ),
        (
            "reply_plain_quote.eml",  # bare '>' quoting above the answer, no header line
            "It was the 1.2 l teapot in blue, please send the replacement to my work address.",
            "Which size of the teapot did you order",
        ),
        (
            "reply_below_indented_headers.eml",  # indented Date/From/Message-ID, '  | ' quote
            "The parcel arrived this morning but the glass teapot is broken into\n"
            "pieces. Can you send a replacement, or should I return it first?\n\nHarriet",
            "left our warehouse today",
        ),
        (
            "reply_below_pipe_quote.eml",  # "On … wrote:" then a '| ' quote, answer below
            "I would like the refund please, back to the same card. The exchange\n"
            "is not needed.",
            "we received your return of the cast iron teapot",
        ),
        (
            "reply_below_original_message.eml",  # "----- Original Message -----", '>', '____'
            "The invoice is made out to my old company name. Could you send a new\n"
            'one to "Martin Conseil SARL", with our VAT number FR40123456789?\n\n'
            "Brigitte Martin",
            "please find the invoice for your order 10298 attached",
        ),
    ],
)
def test_reply_new_text_is_split_from_the_quoted_history(name, new, quoted):
    m = load(name)
    assert m.text_new == new
    assert quoted in m.text_quoted
    assert quoted not in m.text_new


def test_an_empty_new_text_gets_a_second_look_below_the_last_quote():
    """Text after the last quoted block is new; a reply with nothing below its quote, or a
    forward with no quote marks at all, keeps an empty new text."""
    header = "On Mon, 3 Mar 2025 at 10:15, Shop <s@shop.example> wrote:\n"
    assert split_reply(header + "> shipped today\n>\n> Shop\n\n____\n\nNot here yet.")[0] == (
        "Not here yet."
    )
    assert split_reply(header + "> shipped today\n> Shop")[0] == ""
    forward = (
        "---------- Forwarded message ---------\nFrom: Shop <s@shop.example>\n"
        "Date: Mon, 3 Mar 2025\nSubject: Order\nTo: <a@example.com>\n\nYour order shipped."
    )
    new, quoted, _ = split_reply(forward)
    assert new == "" and "Your order shipped." in quoted


def test_reply_header_lines_go_to_the_history():
    assert load("reply_gmail.eml").text_quoted.startswith(
        "On Mon, 3 Mar 2025 at 10:15, Teeladen Support <support@teeladen.example>\nwrote:"
    )
    assert load("reply_german_outlook.eml").text_quoted.startswith(
        "Von: Teeladen Support <support@teeladen.example>\nGesendet:"
    )
    assert load("reply_outlook_original.eml").text_quoted.startswith("-----Original Message-----")


def test_sent_from_my_iphone_is_the_signature():
    m = load("reply_apple_iphone.eml")
    assert m.text_signature == "Sent from my iPhone"
    assert "iPhone" not in m.text_new


def test_dash_dash_space_signature_is_separated():
    m = load("signature_dashdash.eml")
    assert m.text_new == (
        "Hello, can you gift-wrap the order I placed this morning? It is a birthday present."
    )
    assert "Peter Novak" in m.text_signature
    assert "+44 20 7946 0000" in m.text_signature
    assert "Novak Design Studio" not in m.text_new


def test_closing_greeting_starts_the_signature():
    m = load("lang_de.eml")
    assert m.text_signature == "Viele Grüße\nMonika Braun"
    assert m.text_new.endswith("für eine Feier am Wochenende.")


def test_hyphen_lists_are_text_not_a_signature():
    new, quoted, signature = split_reply(
        "Hi,\n\nplease send:\n- 2 blue mugs\n- 1 teapot\n\nThanks,\nAnna"
    )
    assert "- 2 blue mugs\n- 1 teapot" in new
    assert signature == "Thanks,\nAnna"
    assert quoted == ""


def test_a_sentence_starting_with_thanks_is_not_a_signature():
    new, _, signature = split_reply(
        "Hi Karim,\n\nThanks, that helps. One more question: does it fit the 1.2 l pot?\n\nHannah"
    )
    assert "does it fit the 1.2 l pot?" in new
    assert signature == ""


def test_bottom_posted_answer_below_a_quoted_block_is_new_text():
    body = (
        "On Mon, 3 Mar 2025 at 10:15, Shop <s@example.com> wrote:\n"
        + "".join(f"> old line {i}\n" for i in range(20))
        + "\nMy answer is below the quote.\n"
    )
    new, quoted, _ = split_reply(body)
    assert new == "My answer is below the quote."
    assert "> old line 19" in quoted
    assert quoted.startswith("On Mon, 3 Mar 2025")


def test_forward_without_new_text_is_all_history():
    new, quoted, _ = split_reply(
        "---------- Forwarded message ---------\nFrom: Anna <a@example.com>\n"
        "Date: Mon, 3 Mar 2025\nSubject: Broken mug\nTo: shop@example.com\n\nThe mug broke."
    )
    assert new == ""
    assert "The mug broke." in quoted


def test_split_reply_of_empty_text():
    assert split_reply("") == ("", "", "")
    assert split_reply(" \r\n ") == ("", "", "")


# --- attachments ---------------------------------------------------------------------------


def test_attachments_are_listed_with_name_type_size_and_never_in_the_text():
    m = load("attachments.eml")
    assert [(a.filename, a.content_type) for a in m.attachments] == [
        ("parcel.jpg", "image/jpeg"),
        ("return-label.pdf", "application/pdf"),
        ("shipping-confirmation.eml", "message/rfc822"),
    ]
    assert [a.size for a in m.attachments[:2]] == [298, 205]  # decoded bytes, exact
    assert 200 < m.attachments[2].size < 300  # the attached message as sent
    assert m.text_new == (
        "The parcel arrived crushed. Photo, the return label and your shipping mail are attached."
    )
    everything = m.text_new + m.text_quoted + m.text_signature
    assert "ATTACHED_MESSAGE_TEXT" not in everything
    assert "/9j/" not in everything and "JVBER" not in everything  # no base64 in the text


def test_attachment_sizes_of_quoted_printable_and_a_declared_size():
    raw = (
        b"From: a@example.com\nSubject: sizes\nContent-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\nsee attached\n"
        b"--b\nContent-Type: text/csv\nContent-Disposition: attachment; filename=a.csv\n"
        b"Content-Transfer-Encoding: quoted-printable\n\nab=3Dcd=\nef\n"
        b"--b\nContent-Type: application/zip\n"
        b"Content-Disposition: attachment; filename=b.zip; size=123456\n\nPK\n"
        b"--b\nContent-Type: application/zip\n"
        b"Content-Disposition: attachment; filename=c.zip; size=99999999999999999999999\n\nPK\n"
        b"--b--\n"
    )
    m = parse(RawMessage("test", "sizes", raw))
    assert isinstance(m, Message)
    assert [(a.filename, a.size) for a in m.attachments] == [
        ("a.csv", 7),  # "ab=cdef"
        ("b.zip", 123456),  # RFC 2183 size parameter
        ("c.zip", 2),  # an absurd declared size is ignored
    ]
    assert m.text_new == "see attached"


# --- dates ---------------------------------------------------------------------------------


def test_date_is_normalised_to_utc():
    m = load("reply_gmail.eml")  # Tue, 11 Mar 2025 08:30:00 -0500
    assert m.date == datetime(2025, 3, 11, 13, 30, tzinfo=UTC)
    assert m.date.tzinfo is UTC
    assert not m.date_is_fallback


def test_missing_date_falls_back_to_received_header_and_is_flagged():
    m = load("date_missing.eml")  # Received: …; Tue, 18 Mar 2025 09:00:00 +0100
    assert m.date == datetime(2025, 3, 18, 8, 0, tzinfo=UTC)
    assert m.date_is_fallback


def test_broken_date_falls_back_to_the_source_time_and_is_flagged():
    received = datetime(2025, 3, 20, 7, 45, tzinfo=UTC)
    m = load("date_broken.eml", received=received)
    assert m.date == received
    assert m.date_is_fallback


def test_broken_date_without_any_other_time_is_flagged():
    m = load("date_broken.eml")
    assert m.date_is_fallback
    assert m.date.tzinfo is not None


def test_date_without_timezone_is_read_as_utc_with_a_warning():
    m = load("date_no_timezone.eml")  # Wed, 19 Mar 2025 14:05:00
    assert m.date == datetime(2025, 3, 19, 14, 5, tzinfo=UTC)
    assert not m.date_is_fallback
    assert any("time zone" in w for w in m.warnings)


# --- thread keys ---------------------------------------------------------------------------


def test_message_id_in_reply_to_and_folded_references():
    m = load("reply_gmail.eml")
    assert m.message_id == "CAGmail-reply-2@mail.example.com"
    assert m.in_reply_to == "ship-10240@teeladen.example"
    assert m.references == ("order-10240@teeladen.example", "ship-10240@teeladen.example")
    assert m.norm_subject == "your order 10240 has shipped"


def test_missing_message_id_uses_the_content_hash():
    data = (MAIL / "no_message_id.eml").read_bytes()
    m = load("no_message_id.eml")
    digest = hashlib.sha256(data).hexdigest()
    assert m.content_hash == digest
    assert m.message_id == f"sha256:{digest[:32]}"
    assert load("no_message_id.eml").message_id == m.message_id  # stable


@pytest.mark.parametrize(
    ("subject", "normalized"),
    [
        ("Re: Fwd: AW: WG: Where is my order?", "where is my order?"),
        ("RE[2]:  Refund   please", "refund please"),
        ("TR: Réf : Commande", "commande"),
        ("Order", "order"),
    ],
)
def test_normalize_subject(subject, normalized):
    assert normalize_subject(subject) == normalized


# --- order numbers -------------------------------------------------------------------------


def test_order_numbers_in_every_spelling_in_order_of_appearance():
    m = load("order_numbers.eml")
    assert m.order_numbers == ("10234", "10235", "10236", "SO-10237", "10238", "ORD-2026-0042")


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("where is #10234?", ("10234",)),
        ("Order 10234 never came", ("10234",)),
        ("order no. 10234", ("10234",)),
        ("Order number: 10234", ("10234",)),
        ("sales order SO-10234", ("SO-10234",)),
        ("Bestellnummer 10234", ("10234",)),
        ("Ihre Bestellung Nr. 10234", ("10234",)),
        ("ma commande n° 10234", ("10234",)),
        ("ORD-2026-0042 and ORD-2026-0043", ("ORD-2026-0042", "ORD-2026-0043")),
        ("call 555 0199, postcode 90210, price &#8364;", ()),
        ("", ()),
        # the shop's own letters-dash-digits numbers next to an order word
        ("Grinder arrived broken (order NW-48213)", ("NW-48213",)),
        ("Order #NW-48034 - status?", ("NW-48034",)),
        ("Bestellung NW-48177 - wann wird versendet?", ("NW-48177",)),
        ("orders NW-48213 and NW-48214", ("NW-48213", "NW-48214")),  # same prefix: both
        ("Bestell-Nr. 12345", ("12345",)),
        ("Shopify: Order #1001 confirmed", ("1001",)),
        ("WooCommerce: your order #123 has shipped", ("123",)),  # small numbers after a label
        ("Amazon order 123-1234567-1234567", ("123-1234567-1234567",)),
        ("see 112-7654321-7654321 in Seller Central", ("112-7654321-7654321",)),
        ("eBay order number 12-34567-89012", ("12-34567-89012",)),
        # not orders
        ("I want to order 250 bags", ()),
        ("COVID-19 slowed the courier; ref CH-2611-04", ()),
        ("I will order 2026-11-20 or later", ()),
    ],
)
def test_find_order_numbers(text, numbers):
    assert find_order_numbers(text) == numbers


def test_the_shops_own_pattern_adds_order_numbers():
    pattern = re.compile(r"\b(NWC\d{6})\b")
    assert find_order_numbers("about NWC123456 and #10234") == ("10234",)
    assert find_order_numbers("about NWC123456 and #10234", pattern) == ("NWC123456", "10234")


# --- automated mail ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("auto_submitted.eml", "Auto-Submitted: auto-replied"),
        ("precedence_bulk.eml", "Precedence: bulk"),
        ("list_id.eml", "mailing list (List-Id/List-Unsubscribe)"),
        ("bounce.eml", "delivery-status report"),
        ("noreply_sender.eml", "no-reply sender no-reply@…"),
    ],
)
def test_automated_mail_says_why(name, reason):
    assert load(name).automated == reason


@pytest.mark.parametrize(
    "name", ["lang_de.eml", "reply_gmail.eml", "attachments.eml", "signature_dashdash.eml"]
)
def test_a_person_is_not_automated(name):
    assert load(name).automated == ""


def test_bounce_text_is_the_explanation_and_the_original_is_an_attachment():
    m = load("bounce.eml")
    assert "could not be delivered" in m.text_new
    assert "BOUNCED_ORIGINAL_TEXT" not in m.text_new + m.text_quoted
    assert [a.content_type for a in m.attachments] == ["message/rfc822"]


# --- language ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "language"),
    [
        ("lang_de.eml", "de"),
        ("lang_fr.eml", "fr"),
        ("reply_spanish.eml", "es"),
        ("reply_german.eml", "de"),
        ("alternative.eml", "en"),
    ],
)
def test_language_of_the_new_text(name, language):
    assert load(name).language == language


def test_detect_language_needs_some_text():
    assert detect_language("ok") == ""
    assert detect_language("Bonjour, je voudrais annuler ma commande s'il vous plaît.") == "fr"


def test_language_model_released_after_parsing_is_loaded_again_when_needed():
    from supportcli.parse import detect as parse_module

    assert detect_language("Hallo, wo bleibt meine Bestellung vom Montag?") == "de"
    assert parse_module._language_identifier is not None
    release_language_model()
    assert parse_module._language_identifier is None
    assert detect_language("Hallo, wo bleibt meine Bestellung vom Montag?") == "de"


# --- failures ------------------------------------------------------------------------------


def test_empty_data_is_a_parse_failure_with_the_read_error():
    failure = parse(RawMessage("test", "x.eml", b"", ("error:Permission denied",)))
    assert failure == ParseFailure("test", "x.eml", "Permission denied")
    assert isinstance(parse(RawMessage("test", "y.eml", b"   \n")), ParseFailure)


def test_text_without_headers_is_a_parse_failure():
    failure = parse(RawMessage("test", "notes.txt", b"just some notes\nno headers here\n"))
    assert isinstance(failure, ParseFailure)
    assert failure.reason == "no mail headers found"


def test_multipart_without_matching_boundary_still_gives_text():
    raw = (
        b"From: a@example.com\nSubject: broken\n"
        b"Content-Type: multipart/mixed; boundary=NOPE\n\n"
        b"--OTHER\nContent-Type: text/plain\n\nplease help with my order\n--OTHER--\n"
    )
    m = parse(RawMessage("test", "broken", raw))
    assert isinstance(m, Message)
    assert "please help with my order" in m.text_new


def test_flags_and_source_are_kept():
    raw = RawMessage("maildir:/x", "k1", (MAIL / "lang_fr.eml").read_bytes(), ("\\Seen",))
    m = parse(raw)
    assert isinstance(m, Message)
    assert (m.source, m.source_key, m.flags) == ("maildir:/x", "k1", ("\\Seen",))
    assert m.to == ("support@teeladen.example",)


def test_a_contact_form_relay_is_the_customers_own_mail() -> None:
    m = load("contact_form_relay.eml")
    assert (m.sender_name, m.sender_addr) == ("Gráinne Walsh", "grainne.walsh84@gmail.com")
    assert m.automated == ""
    assert m.relayed_by == "no-reply@emberandoak.example"
    assert m.text_new.startswith("Hi, the fig & cedar candle")
    assert m.text_new.endswith("until I hear from you.")  # the form's footer is left out
    assert "10482" in m.order_numbers


def test_a_german_contact_form_relay_with_auto_submitted_is_still_customer_mail() -> None:
    m = load("contact_form_relay_de.eml")
    assert m.sender_addr == "j.albers@web.de"
    assert m.automated == ""
    assert m.text_new.startswith("Guten Morgen, ich habe gestern Abend")


def test_an_ordinary_no_reply_notification_is_not_a_relay() -> None:
    m = load("noreply_sender.eml")
    assert m.automated and not m.relayed_by


def test_the_writers_own_clock_is_kept() -> None:
    m = load("contact_form_relay.eml")
    assert m.date.utcoffset() == timedelta(0)  # stored in UTC
    assert m.utc_offset == 60
    assert m.local_date.strftime("%a %H:%M") == "Wed 21:47"
