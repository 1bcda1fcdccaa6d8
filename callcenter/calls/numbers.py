"""The number a carrier called, in the national form the dialplan's lines are written in.

Carriers send ``+48800123456``, ``48800123456``, ``0048800123456``, ``800123456`` or
``0800123456``, as a SIP or ``tel:`` URI, in the Request-URI or (to a registered trunk, whose
Request-URI is our Contact) in the To; all become ``0800123456`` for country PL. The national
form is the country's national prefix, ``0`` where it has none (Polish dialplans write
``0800...``/``022...``), then the national significant number. What ``phonenumbers`` does not
take for a valid number (an extension, a short code) is left as it came.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers

from callcenter.sip.message import Request
from callcenter.sip.uri import NameAddr, SipUri

ANONYMOUS = "anonymous"

_NUMBER = re.compile(r"\+?[0-9]+")
_VISUAL = re.compile(r"[\s().\-]")


def _user(uri: object) -> str:
    """The user of a SIP URI or the number of a ``tel:`` URI ("" for anything else)."""
    if isinstance(uri, SipUri):
        return _VISUAL.sub("", uri.user or "")
    text = str(uri)
    if text[:4].lower() == "tel:":
        return _VISUAL.sub("", text[4:].split(";", 1)[0])
    return ""


def _anonymous(uri: object) -> bool:
    """RFC 3323 §4.1.1.3's anonymous From (``anonymous@anonymous.invalid``), or its user."""
    if isinstance(uri, SipUri):
        return (uri.user or "").lower() == ANONYMOUS or uri.host.lower() == "anonymous.invalid"
    return False


def caller_identity(req: Request, *, trusted: bool) -> str:
    """Who calls from a trunk: the P-Asserted-Identity's number when the trunk is trusted
    (RFC 3325), else the From's user; ``anonymous`` when the caller asked for privacy
    (``Privacy: id``, ``header`` or ``user``, RFC 3323/3325) or the From is anonymous."""
    privacy = {p.strip().lower() for v in req.headers.get_all("Privacy") for p in v.split(";")}
    if privacy & {"id", "header", "user"} or _anonymous(req.from_.uri):
        return ANONYMOUS
    uris: list[object] = []
    for value in req.headers.get_all("P-Asserted-Identity") if trusted else ():
        try:
            uris.append(NameAddr.parse(value).uri)
        except ValueError:
            continue
    for uri in [*uris, req.from_.uri]:
        number = _user(uri)
        if _NUMBER.fullmatch(number):
            return number
    from_ = req.from_.uri
    return (from_.user if isinstance(from_, SipUri) else None) or ANONYMOUS


@dataclass(frozen=True)
class Identity:
    """What an outbound INVITE says about the caller: From's user and display name, and the
    ``Privacy`` / ``P-Asserted-Identity`` headers (RFC 3323, 3325)."""

    user: str
    display: str = ""
    anonymous: bool = False
    asserted: str | None = None  #: the number for P-Asserted-Identity, if any


def outbound_identity(
    caller: str, display: str, *, country: str, number_format: str, default: str | None,
    default_name: str, trusted: bool,
) -> Identity:
    """The caller as a trunk is told: a number in its ``number_format``; a caller that is no
    number (an extension, an IVR caller without one) as the trunk's ``default`` number and
    name; ``anonymous`` with ``Privacy: id``, the default number asserted (the carrier still
    needs whom to bill). A ``trusted`` trunk gets P-Asserted-Identity with the number."""
    default = present(default, country, number_format) if default else None
    if caller.lower() == ANONYMOUS:
        return Identity(ANONYMOUS, "Anonymous", anonymous=True, asserted=default)
    number = present(caller, country, number_format) if parse(caller, country) else None
    if number is None and default is not None:
        number, display = default, default_name or display
    user = number or caller
    return Identity(user, display, asserted=user if trusted and number else None)


def called_number(req: Request) -> str:
    """The called number: the Request-URI's, or the To's when the Request-URI holds none."""
    ruri = _user(req.request_uri)
    if _NUMBER.fullmatch(ruri):
        return ruri
    to = _user(req.to.uri)
    return to if _NUMBER.fullmatch(to) else ruri


def parse(number: str, country: str) -> phonenumbers.PhoneNumber | None:
    """``number`` as a valid phone number (national ones in ``country``), else None."""
    candidates = [number]
    if number.startswith("0") and not number.startswith("00"):
        candidates.append(number[1:])  # a trunk prefix the country's metadata lacks (PL)
    for text in candidates:
        try:
            parsed = phonenumbers.parse(text, country)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return parsed
    return None


@functools.lru_cache(maxsize=4096)  # the numbers a trunk's calls are for: a few hotlines
def national(number: str, country: str) -> str:
    """``number`` in the dialplan's national form (see the module's docstring)."""
    parsed = parse(number, country)
    if parsed is None or phonenumbers.region_code_for_number(parsed) != country.upper():
        return number
    return _national(parsed, country.upper(), "0")


def _national(parsed: phonenumbers.PhoneNumber, country: str, default_prefix: str = "") -> str:
    """The country's national prefix (``default_prefix`` where it has none), then the NSN."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(country)
    prefix = (metadata.national_prefix if metadata else None) or default_prefix
    return prefix + phonenumbers.national_significant_number(parsed)



def present(number: str, country: str, number_format: str) -> str:
    """``number`` as a trunk in ``country`` wants it: ``e164`` (``+48221234567``),
    ``international`` (the country's exit code: ``0048221234567`` from PL, ``011...`` from US)
    or ``national`` (``221234567``; a number of another country goes out international).
    What is not a valid number (an extension, a short code) goes out as it is."""
    parsed = parse(number, country)
    if parsed is None:
        return number
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if number_format == "national" and phonenumbers.region_code_for_number(parsed) == country:
        return _national(parsed, country)
    if number_format == "e164":
        return e164
    meta = phonenumbers.PhoneMetadata.metadata_for_region(country)
    exit_code = (meta.preferred_international_prefix or meta.international_prefix) if meta else None
    return (exit_code if exit_code and exit_code.isdigit() else "00") + e164[1:]


def spellings(e164: str) -> set[str]:
    """The ways ``e164`` may be written in a caller ID or a log: ``+48221234567``,
    ``48221234567``, ``0048221234567``, national ``221234567`` and ``0221234567`` (and the
    country's own national prefix); what is no valid number, only itself."""
    parsed = parse(e164, "ZZ")
    if parsed is None:
        return {e164}
    region = phonenumbers.region_code_for_number(parsed) or "ZZ"
    nsn = phonenumbers.national_significant_number(parsed)
    return {e164, e164[1:], "00" + e164[1:], nsn, "0" + nsn, _national(parsed, region)}
