"""Website contact-form relays: a no-reply sender whose body is "Name: … Email: … Message: …".

The shop's site sends them, but a customer wrote them: they are customer mail. ``unwrap``
finds the customer's name, address and message, so the message is classified and shown as if
the customer had written directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr

_LABEL = r"^[ \t*]*(?:{})[ \t*]*:[ \t]*"
_NAME = re.compile(_LABEL.format(
    r"(?:your |full |first )?name|naam|nom|nombre|nome|vor- und nachname|navn"), re.I | re.M)
_EMAIL = re.compile(_LABEL.format(
    r"(?:your )?e-?mail(?: address| adresse|-adres|-adresse)?|courriel|correo(?: electrónico)?"
    r"|adresse e-?mail|indirizzo e-?mail"), re.I | re.M)
_MESSAGE = re.compile(_LABEL.format(
    r"(?:your )?(?:message|comments?|enquiry|inquiry|question)|nachricht|ihre nachricht"
    r"|mensaje|messaggio|bericht|mensagem|votre message|anliegen"), re.I | re.M)
_ADDRESS = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
# Where the form's own footer starts after the message.
_FOOTER = re.compile(r"^(?:--+\s*$|_{3,}|this (?:e-?mail|message) was sent|sent (?:from|via) "
                     r"(?:the|your|a) (?:contact )?form|submitted (?:from|on|at)|ip address"
                     r"|page url|user agent|diese e-mail wurde)", re.I | re.M)


@dataclass(frozen=True)
class Relayed:
    name: str
    address: str
    message: str


def unwrap(body: str) -> Relayed | None:
    """The customer's message inside a contact-form relay, or None when ``body`` is not one."""
    email_line = _EMAIL.search(body)
    message_label = _MESSAGE.search(body)
    if not email_line or not message_label or email_line.start() > message_label.start():
        return None
    address = _ADDRESS.search(body[email_line.end():].split("\n", 1)[0])
    if address is None:
        return None
    name_line = _NAME.search(body, 0, message_label.start())
    name = ""
    if name_line:
        name = body[name_line.end():].split("\n", 1)[0].strip()[:120]
    rest = body[message_label.end():]
    footer = _FOOTER.search(rest)
    message = (rest[:footer.start()] if footer else rest).strip()
    if not message:
        return None
    _, addr = parseaddr(address.group())
    return Relayed(name, addr.lower(), message)
