"""RFC 3261 grammar facts in one place: character sets, header names and categories.

Section numbers refer to RFC 3261 unless another RFC is named.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from functools import lru_cache

# §25.1 basic rules ---------------------------------------------------------------------------

ALPHA = frozenset(string.ascii_letters)
DIGIT = frozenset(string.digits)
ALPHANUM = ALPHA | DIGIT
HEXDIG = frozenset(string.hexdigits)
#: §25.1 mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
MARK = frozenset("-_.!~*'()")
#: §25.1 unreserved = alphanum / mark
UNRESERVED = ALPHANUM | MARK
#: §25.1 token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = ALPHANUM | frozenset("-.!%*_+`'~")
#: §25.1 LWS / SWS whitespace characters (after unfolding).
WSP = " \t"
#: §25.1 scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
SCHEME_CHARS = ALPHANUM | frozenset("+-.")

# §25.1 SIP-URI components: characters that may appear unescaped ------------------------------

#: user = 1*( unreserved / escaped / user-unreserved ); user-unreserved = & = + $ , ; ? /
USER_CHARS = UNRESERVED | frozenset("&=+$,;?/")
#: password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
PASSWORD_CHARS = UNRESERVED | frozenset("&=+$,")
#: paramchar = param-unreserved / unreserved / escaped; param-unreserved = [ ] / : & + $
PARAM_CHARS = UNRESERVED | frozenset("[]/:&+$")
#: hname/hvalue = hnv-unreserved / unreserved / escaped; hnv-unreserved = [ ] / ? : + $
HEADER_CHARS = UNRESERVED | frozenset("[]/?:+$")
#: hostname = *( domainlabel "." ) toplabel [ "." ] (letters, digits, "-", ".")
HOSTNAME_CHARS = ALPHANUM | frozenset("-.")
#: IPv6reference = "[" IPv6address "]" (hex digits, ":" and "." for the IPv4 tail)
IPV6_CHARS = HEXDIG | frozenset(":.")

#: §7.1 / §25.1 SIP-Version: the only version this server speaks.
SIP_VERSION = "SIP/2.0"
#: §8.1.1.5 CSeq sequence numbers are 32-bit unsigned on the wire (RFC 4475 §3.1.2.4).
MAX_CSEQ = 2**32 - 1
#: §20.22 Max-Forwards = 1*DIGIT, 0-255.
MAX_MAX_FORWARDS = 255

#: URI schemes this server understands in a Request-URI (§19.1, RFC 3966 tel).
SUPPORTED_SCHEMES = frozenset({"sip", "sips", "tel"})

# §7.3.3 compact forms, plus those registered by later RFCs ------------------------------------

COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",  # RFC 3841
    "b": "Referred-By",  # RFC 3892
    "c": "Content-Type",  # §20.15
    "d": "Request-Disposition",  # RFC 3841
    "e": "Content-Encoding",  # §20.12
    "f": "From",  # §20.20
    "i": "Call-ID",  # §20.8
    "j": "Reject-Contact",  # RFC 3841
    "k": "Supported",  # §20.37
    "l": "Content-Length",  # §20.14
    "m": "Contact",  # §20.10
    "n": "Identity-Info",  # RFC 4474
    "o": "Event",  # RFC 6665
    "r": "Refer-To",  # RFC 3515
    "s": "Subject",  # §20.36
    "t": "To",  # §20.39
    "u": "Allow-Events",  # RFC 6665
    "v": "Via",  # §20.42
    "x": "Session-Expires",  # RFC 4028
    "y": "Identity",  # RFC 4474
}

#: Canonical spellings whose capitalisation is not simply Title-Case per "-" part.
_SPECIAL_NAMES = (
    "Call-ID",
    "CSeq",
    "WWW-Authenticate",
    "MIME-Version",
    "RSeq",
    "RAck",
    "SIP-ETag",
    "SIP-If-Match",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Min-SE",
)
_CANONICAL: dict[str, str] = {n.lower(): n for n in _SPECIAL_NAMES}
_CANONICAL.update({k: v for k, v in COMPACT_FORMS.items()})


@lru_cache(maxsize=512)
def canonical_name(name: str) -> str:
    """Canonical spelling of a header name: compact forms expanded, known casing applied (§7.3.1)."""
    low = name.lower()
    known = _CANONICAL.get(low)
    if known is not None:
        return known
    return "-".join(part[:1].upper() + part[1:] for part in low.split("-"))


# Header categories ---------------------------------------------------------------------------

#: Headers whose values may contain unquoted commas, so a line is never split into list elements:
#: credentials and challenges (§20.7, §20.27, §20.28, §20.44), Date's rfc1123-date (§20.17),
#: free text and comments (§20.16, §20.33, §20.35, §20.36, §20.41, §20.43), and single-valued
#: headers whose grammar admits a display name that a sloppy peer may leave unquoted (§20.20, §20.39).
NEVER_SPLIT = frozenset(
    {
        "WWW-Authenticate",
        "Authorization",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Authentication-Info",
        "Date",
        "Subject",
        "Organization",
        "Server",
        "User-Agent",
        "Retry-After",
        "Timestamp",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Content-Length",
        "Content-Type",
        "Expires",
        "Min-Expires",
        "MIME-Version",
        "Priority",
        "Reply-To",
        "Refer-To",
        "Referred-By",
        "Event",
        "Identity",
        "Identity-Info",
        "Session-Expires",
        "Min-SE",
        "RSeq",
        "RAck",
        "Content-Disposition",
    }
)

#: Headers that must appear at most once in a request (§20: these are not `#` lists).
SINGLETONS = frozenset(
    {"Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length", "Content-Type"}
)

#: §8.1.1 headers every request must carry (Max-Forwards is also a MUST for UACs, but RFC 2543
#: peers omit it and RFC 4475 §3.4.1 asks us to accept that).
MANDATORY_REQUEST = ("Via", "From", "To", "Call-ID", "CSeq")

#: §21 reason phrases used by default in responses we build.
REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def char_class(chars: frozenset[str]) -> str:
    """A regex character class matching exactly `chars`."""
    return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"


#: A run of token characters at the start of a string (linear: one character class).
TOKEN_RUN = re.compile(char_class(TOKEN_CHARS) + "*")


def only(chars: frozenset[str]) -> Callable[[str], bool]:
    """A test that a string uses only `chars` (one regex character class: linear)."""
    pattern = re.compile(char_class(chars) + "*")
    match = pattern.fullmatch
    return lambda text: match(text) is not None


_token = re.compile(char_class(TOKEN_CHARS) + "+").fullmatch


def is_token(text: str) -> bool:
    """True if `text` is a non-empty §25.1 token."""
    return _token(text) is not None


# Character-set tests used by the URI and header parsers ("%" admits escapes, decoded later).
is_scheme_tail = only(SCHEME_CHARS)
is_user = only(USER_CHARS | {"%"})
is_password = only(PASSWORD_CHARS | {"%"})
is_uri_param = only(PARAM_CHARS | {"%"})
is_uri_header = only(HEADER_CHARS | {"%"})
is_hostname = only(HOSTNAME_CHARS)
is_ipv6 = only(IPV6_CHARS)
#: generic-param values: token / host (IPv6 references included) (§25.1 gen-value)
is_gen_value = only(TOKEN_CHARS | frozenset("[]:"))
