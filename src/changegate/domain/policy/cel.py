"""Custom rules in CEL: a PolicyRule entity compiled into a rule the engine runs.

A custom rule reads like a Kubernetes ValidatingAdmissionPolicy validation: `expression`
must be true for every document the rule's `match` selects; when it is false the rule
reports `message` (or what `message_expression` evaluates to). The expression sees:

- `object`: the document's data (a Kubernetes object, a Terraform plan, a Dockerfile's
  instructions, a configuration file's settings...);
- `environment` (string, "" when the check names none), `production` (bool) and `tenant`
  (string: the tenant owning the document's namespace, else the check's tenant, else "").

There is no `oldObject`, `request`, `params`, `namespaceObject` or `authorizer`: a check
looks at manifests, not at an API request.

Evaluation errors (a field missing without a `has()` guard, a function given the wrong
type) fail the document, as a ValidatingAdmissionPolicy with the default
`failurePolicy: Fail` does: the finding says the expression could not be evaluated and why.

The CEL library is `common-expression-language` (a binding of the Rust `cel` crate), chosen
by bench/bench_cel.py. It has no cost limit, and an evaluation cannot be interrupted, so
the cost is bounded here instead: expressions of at most 10,000 characters, comprehension
macros nested at most MAX_MACRO_NESTING deep, string helpers that refuse results over
MAX_STRING_RESULT characters, and a time budget per rule and check (RULE_BUDGET_SECONDS),
checked between documents: a rule that spends it stops and fails the first document it
did not evaluate, naming how many it skipped.

Each document is handed to the library cut down to the parts the expressions can read,
found by scanning the expression's tokens: the paths selected from `object`
(`object.spec.replicas` keeps `spec.replicas` only), and inside `all`, `exists`,
`exists_one` and `map` over such a path, what the body reads from each element
(`object.spec.template.spec.containers.all(c, c.image != '')` keeps each container's image).
An expression using `object` in any other way gets the whole document. Converting a
document into the library's values is most of the cost of an evaluation (about 1 µs per
value), so this makes a rule about one field cheap whatever the size of the documents.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Context as DecimalContext
from decimal import Decimal
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from changegate.domain.policy.model import Document, Format, Hit, RuleInfo

if TYPE_CHECKING:
    from changegate.domain.policy.changeset import ChangeSet, CheckContext
    from changegate.domain.policy.config import PolicyRuleSpec

MAX_EXPRESSION = 10_000
MAX_MACRO_NESTING = 4
MAX_STRING_RESULT = 1_000_000
RULE_BUDGET_SECONDS = 10.0
MAX_MESSAGE = 1000

VARIABLES = ("object", "environment", "production", "tenant")
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
# Names that are not variables: type denotations (`type(x) == int`) and namespaces.
_NAMESPACES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"}
    | {"dyn", "optional"}
)
# What the library provides itself (functions and receiver methods); macros and `has` are
# expanded by its parser and never show up as function names.
BUILTINS = frozenset(
    {
        "size", "int", "uint", "double", "string", "bytes", "timestamp", "duration", "dyn",
        "type", "contains", "startsWith", "endsWith", "matches", "getDate", "getDayOfMonth",
        "getDayOfWeek", "getDayOfYear", "getFullYear", "getHours", "getMilliseconds",
        "getMinutes", "getMonth", "getSeconds", "orValue", "hasValue", "value", "or", "of",
        "none", "ofNonZeroValue",
    }
)  # fmt: skip


# --- the library's warnings -------------------------------------------------------------


class _QuietFunctionFailures(logging.Filter):
    """The library logs a warning each time a registered function raises; the finding
    already says it, once per document, so the log would only repeat it thousands of times."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Python function ")


@functools.cache
def _library() -> Any:
    """The CEL library, imported on first use: it loads its own command-line tool (and
    prompt_toolkit) at import, which a check without custom rules should not pay for."""
    import cel

    return cel


_LIBRARY_LOG = logging.getLogger("cel")
if not any(isinstance(f, _QuietFunctionFailures) for f in _LIBRARY_LOG.filters):
    _LIBRARY_LOG.addFilter(_QuietFunctionFailures())


# --- helpers: Kubernetes quantities -----------------------------------------------------

_QUANTITY = re.compile(
    r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|[numkMGTPE])?"
)
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_EXACT = DecimalContext(prec=400)
QUANTITY_KEY = "@quantity"
URL_KEY = "@url"


def _parse_quantity(text: str) -> Decimal | None:
    if len(text) > 100:
        return None
    found = _QUANTITY.fullmatch(text)
    if found is None:
        return None
    number, suffix = Decimal(found[1]), found[2] or ""
    if suffix in _BINARY:
        return _EXACT.multiply(number, Decimal(2 ** _BINARY[suffix]))
    exponent = _DECIMAL[suffix] if suffix in _DECIMAL else int(suffix[1:])
    if abs(exponent) > 100:
        return None
    return number.scaleb(exponent, _EXACT)


def _quantity_value(value: Decimal) -> dict[str, str]:
    value = Decimal(0) if value == 0 else value.normalize(_EXACT)
    return {QUANTITY_KEY: str(value)}


def _as_decimal(value: Any, function: str) -> Decimal:
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(QUANTITY_KEY), str):
        return Decimal(value[QUANTITY_KEY])
    raise TypeError(f"{function} takes a quantity (quantity('500m')), not {_type_name(value)}")


def quantity(text: Any) -> dict[str, str]:
    """quantity("500m"): a Kubernetes resource quantity, compared exactly."""
    if not isinstance(text, str):
        raise TypeError(f"quantity takes a string, not {_type_name(text)}")
    value = _parse_quantity(text)
    if value is None:
        raise ValueError(f"not a Kubernetes quantity: {text[:100]!r}")
    return _quantity_value(value)


def is_quantity(text: Any) -> bool:
    if not isinstance(text, str):
        raise TypeError(f"isQuantity takes a string, not {_type_name(text)}")
    return _parse_quantity(text) is not None


def _quantity_or_int(value: Any, function: str) -> Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return _as_decimal(value, function)


def quantity_add(left: Any, right: Any) -> dict[str, str]:
    total = _EXACT.add(_as_decimal(left, "add"), _quantity_or_int(right, "add"))
    return _quantity_value(total)


def quantity_sub(left: Any, right: Any) -> dict[str, str]:
    total = _EXACT.subtract(_as_decimal(left, "sub"), _quantity_or_int(right, "sub"))
    return _quantity_value(total)


def quantity_compare(left: Any, right: Any) -> int:
    a, b = _as_decimal(left, "compareTo"), _as_decimal(right, "compareTo")
    return (a > b) - (a < b)


def quantity_greater(left: Any, right: Any) -> bool:
    return _as_decimal(left, "isGreaterThan") > _as_decimal(right, "isGreaterThan")


def quantity_less(left: Any, right: Any) -> bool:
    return _as_decimal(left, "isLessThan") < _as_decimal(right, "isLessThan")


def quantity_sign(value: Any) -> int:
    number = _as_decimal(value, "sign")
    return (number > 0) - (number < 0)


def quantity_is_integer(value: Any) -> bool:
    number = _as_decimal(value, "isInteger")
    return number == number.to_integral_value() and -(2**63) <= number < 2**63


def quantity_as_integer(value: Any) -> int:
    number = _as_decimal(value, "asInteger")
    if number != number.to_integral_value() or not -(2**63) <= number < 2**63:
        raise ValueError(f"quantity {number} is not an integer that fits in int64")
    return int(number)


def quantity_as_float(value: Any) -> float:
    return float(_as_decimal(value, "asApproximateFloat"))


# --- helpers: lists (Kubernetes' CEL list library) --------------------------------------


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if value is None:
        return "null"
    return {
        int: "int",
        float: "double",
        str: "string",
        bytes: "bytes",
        list: "list",
        dict: "map",
        datetime: "timestamp",
        timedelta: "duration",
    }.get(type(value), type(value).__name__)


def _family(value: Any) -> str:
    """Values of one family compare with each other (int and double on one number line)."""
    name = _type_name(value)
    return "number" if name in ("int", "double") else name


_ORDERED = frozenset({"number", "string", "bytes", "bool", "timestamp", "duration"})


def _comparable(items: Any, function: str) -> list[Any]:
    if not isinstance(items, list):
        raise TypeError(f"{function} applies to a list, not {_type_name(items)}")
    families = {_family(item) for item in items}
    if len(families) > 1 or not families <= _ORDERED:
        kinds = ", ".join(sorted({_type_name(item) for item in items}))
        raise TypeError(f"{function} needs elements of one comparable type, found {kinds}")
    return items


def list_is_sorted(items: Any) -> bool:
    values = _comparable(items, "isSorted")
    return all(a <= b for a, b in itertools.pairwise(values))


def list_sum(items: Any) -> Any:
    values = _comparable(items, "sum")
    if not values:
        return 0
    if _family(values[0]) not in ("number", "duration"):
        raise TypeError(f"sum needs numbers or durations, not {_type_name(values[0])}")
    total = values[0]
    for value in values[1:]:
        total = total + value
    if isinstance(total, int) and not -(2**63) <= total < 2**64:
        raise OverflowError("sum overflows int64")
    return total


def list_min(items: Any) -> Any:
    values = _comparable(items, "min")
    if not values:
        raise ValueError("min of an empty list")
    return min(values)


def list_max(items: Any) -> Any:
    values = _comparable(items, "max")
    if not values:
        raise ValueError("max of an empty list")
    return max(values)


def _same(a: Any, b: Any) -> bool:
    """CEL equality: numbers across int/double, no bool/int confusion, lists and maps deep."""
    fa, fb = _family(a), _family(b)
    if fa != fb:
        return False
    if fa == "list":
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if fa == "map":
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


# --- helpers: strings (cel-go's strings extension, as Kubernetes enables it) ------------


def _string(value: Any, function: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{function} applies to a string, not {_type_name(value)}")
    return value


def _index(value: Any, function: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{function} takes an int position, not {_type_name(value)}")
    return value


def _bounded(text: str, function: str) -> str:
    if len(text) > MAX_STRING_RESULT:
        raise ValueError(f"{function} would build a string over {MAX_STRING_RESULT} characters")
    return text


def index_of(receiver: Any, item: Any, offset: Any = 0) -> int:
    """String: position of a substring (from offset); list: position of an element."""
    if isinstance(receiver, list):
        return next((i for i, x in enumerate(receiver) if _same(x, item)), -1)
    text, sub, start = (
        _string(receiver, "indexOf"),
        _string(item, "indexOf"),
        _index(offset, "indexOf"),
    )
    if not 0 <= start <= len(text):
        raise IndexError(f"indexOf offset {start} out of range for a string of {len(text)}")
    return text.find(sub, start)


def last_index_of(receiver: Any, item: Any, offset: Any = None) -> int:
    """String: last position of a substring (at or before offset); list: of an element."""
    if isinstance(receiver, list):
        return next((i for i in range(len(receiver) - 1, -1, -1) if _same(receiver[i], item)), -1)
    text, sub = _string(receiver, "lastIndexOf"), _string(item, "lastIndexOf")
    end = len(text) if offset is None else _index(offset, "lastIndexOf")
    if not 0 <= end <= len(text):
        raise IndexError(f"lastIndexOf offset {end} out of range for a string of {len(text)}")
    return text.rfind(sub, 0, end + len(sub))


_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def lower_ascii(text: Any) -> str:
    return _string(text, "lowerAscii").translate(_LOWER)


def upper_ascii(text: Any) -> str:
    return _string(text, "upperAscii").translate(_UPPER)


def trim(text: Any) -> str:
    return _string(text, "trim").strip()


def char_at(text: Any, index: Any) -> str:
    value, at = _string(text, "charAt"), _index(index, "charAt")
    if not 0 <= at <= len(value):
        raise IndexError(f"charAt index {at} out of range for a string of {len(value)}")
    return value[at : at + 1]


def substring(text: Any, start: Any, end: Any = None) -> str:
    value = _string(text, "substring")
    first = _index(start, "substring")
    last = len(value) if end is None else _index(end, "substring")
    if not 0 <= first <= last <= len(value):
        raise IndexError(f"substring({first}, {last}) out of range for a string of {len(value)}")
    return value[first:last]


def replace(text: Any, old: Any, new: Any, count: Any = -1) -> str:
    value = _string(text, "replace")
    before, after = _string(old, "replace"), _string(new, "replace")
    limit = _index(count, "replace")
    if limit == 0:
        return value
    # The result's size is known before building it: refuse a blow-up without making it.
    found = value.count(before) if before else len(value) + 1
    times = found if limit < 0 else min(limit, found)
    if len(value) + times * (len(after) - len(before)) > MAX_STRING_RESULT:
        raise ValueError(f"replace would build a string over {MAX_STRING_RESULT} characters")
    return value.replace(before, after, times)


def split(text: Any, separator: Any, limit: Any = -1) -> list[str]:
    value, sep = _string(text, "split"), _string(separator, "split")
    count = _index(limit, "split")
    if count == 0:
        return []
    if sep == "":
        parts = list(value)
        if 0 < count < len(parts):
            parts = [*parts[: count - 1], "".join(parts[count - 1 :])]
        return parts
    return value.split(sep, count - 1 if count > 0 else -1)


def join(items: Any, separator: Any = "") -> str:
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise TypeError("join applies to a list of strings")
    return _bounded(_string(separator, "join").join(items), "join")


# --- helpers: timestamps in a timezone --------------------------------------------------

_FIXED_ZONE = re.compile(r"([+-])(\d\d):(\d\d)")


def _zone(name: Any) -> tzinfo:
    text = _string(name, "timezone")
    fixed = _FIXED_ZONE.fullmatch(text)
    if fixed:
        offset = timedelta(hours=int(fixed[2]), minutes=int(fixed[3]))
        return timezone(-offset if fixed[1] == "-" else offset)
    if text == "UTC":
        return UTC
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {text[:64]!r}") from None


def _local(moment: Any, zone: Any, function: str) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{function}(timezone) applies to a timestamp, not {_type_name(moment)}")
    return moment.astimezone(_zone(zone))


def _accessor(function: str, part: Callable[[datetime], int]) -> Callable[[Any, Any], int]:
    def get(moment: Any, zone: Any) -> int:
        return part(_local(moment, zone, function))

    get.__name__ = function
    return get


TIME_ACCESSORS: dict[str, Callable[[Any, Any], int]] = {
    "getFullYear": _accessor("getFullYear", lambda d: d.year),
    "getMonth": _accessor("getMonth", lambda d: d.month - 1),
    "getDate": _accessor("getDate", lambda d: d.day),
    "getDayOfMonth": _accessor("getDayOfMonth", lambda d: d.day - 1),
    "getDayOfWeek": _accessor("getDayOfWeek", lambda d: (d.weekday() + 1) % 7),
    "getDayOfYear": _accessor("getDayOfYear", lambda d: d.timetuple().tm_yday - 1),
    "getHours": _accessor("getHours", lambda d: d.hour),
    "getMinutes": _accessor("getMinutes", lambda d: d.minute),
    "getSeconds": _accessor("getSeconds", lambda d: d.second),
    "getMilliseconds": _accessor("getMilliseconds", lambda d: d.microsecond // 1000),
}


# --- helpers: URLs (Kubernetes' CEL URL library) ----------------------------------------


def _parsed_url(text: str) -> Any | None:
    """Like Go's url.ParseRequestURI: an absolute URL or an absolute path, no fragment."""
    if not text or len(text) > 8192 or any(c.isspace() or ord(c) < 32 for c in text):
        return None
    if "#" in text:
        return None
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises on a bad port
    except ValueError:
        return None
    if parts.scheme:
        return parts if (parts.netloc or parts.path.startswith("/")) else None
    return parts if text.startswith("/") else None


def url(text: Any) -> dict[str, str]:
    value = _string(text, "url")
    if _parsed_url(value) is None:
        raise ValueError(f"not an absolute URL or absolute path: {value[:200]!r}")
    return {URL_KEY: value}


def is_url(text: Any) -> bool:
    return _parsed_url(_string(text, "isURL")) is not None


def _url_parts(value: Any, function: str) -> Any:
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(URL_KEY), str):
        return _parsed_url(value[URL_KEY])
    raise TypeError(f"{function} takes a URL (url('https://...')), not {_type_name(value)}")


def url_scheme(value: Any) -> str:
    return str(_url_parts(value, "getScheme").scheme)


def url_host(value: Any) -> str:
    parts = _url_parts(value, "getHost")
    return str(parts.netloc.rpartition("@")[2])


def url_hostname(value: Any) -> str:
    host = url_host(value)
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if ":" in host else host


def url_port(value: Any) -> str:
    host = url_host(value)
    if host.startswith("["):
        rest = host.partition("]")[2]
        return rest[1:] if rest.startswith(":") else ""
    return host.rpartition(":")[2] if ":" in host else ""


def url_path(value: Any) -> str:
    return str(_url_parts(value, "getEscapedPath").path)


def url_query(value: Any) -> dict[str, list[str]]:
    query = _url_parts(value, "getQuery").query
    return {k: list(v) for k, v in parse_qs(query, keep_blank_values=True).items()}


FUNCTIONS: dict[str, Callable[..., Any]] = {
    # quantities
    "quantity": quantity,
    "isQuantity": is_quantity,
    "add": quantity_add,
    "sub": quantity_sub,
    "compareTo": quantity_compare,
    "isGreaterThan": quantity_greater,
    "isLessThan": quantity_less,
    "sign": quantity_sign,
    "isInteger": quantity_is_integer,
    "asInteger": quantity_as_integer,
    "asApproximateFloat": quantity_as_float,
    # lists
    "isSorted": list_is_sorted,
    "sum": list_sum,
    "min": list_min,
    "max": list_max,
    # strings (indexOf/lastIndexOf also on lists)
    "indexOf": index_of,
    "lastIndexOf": last_index_of,
    "lowerAscii": lower_ascii,
    "upperAscii": upper_ascii,
    "trim": trim,
    "charAt": char_at,
    "substring": substring,
    "replace": replace,
    "split": split,
    "join": join,
    # URLs
    "url": url,
    "isURL": is_url,
    "getScheme": url_scheme,
    "getHost": url_host,
    "getHostname": url_hostname,
    "getPort": url_port,
    "getEscapedPath": url_path,
    "getQuery": url_query,
    # timestamp accessors with a timezone argument (the library has them without)
    **TIME_ACCESSORS,
}


# --- reading an expression's tokens -----------------------------------------------------

_TOKEN = re.compile(
    r"(?P<space>\s+|//[^\n]*)"
    r"|(?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:'''|\"\"\"|'|\"))"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<number>0[xX][0-9a-fA-F]+[uU]?|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?"
    r"|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<punct>.)",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # ident, string, number, punct
    text: str
    key: str | None = None  # a plain string literal's value


def _tokens(text: str) -> list[_Token] | None:
    """The expression's tokens, or None when it uses syntax this scanner does not know."""
    found: list[_Token] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:  # pragma: no cover - the last alternative matches any character
            return None
        kind = match.lastgroup or "punct"
        if kind == "space":
            at = match.end()
            continue
        if kind == "string":
            opening = match.group()
            prefix = opening.rstrip("'\"")
            quote = opening[len(prefix) :]
            raw = "r" in prefix.lower()
            end = match.end()
            while True:
                if end >= len(text):
                    return None
                if not raw and text[end] == "\\":
                    end += 2
                    continue
                if text.startswith(quote, end):
                    break
                end += 1
            body = text[match.end() : end]
            plain = not prefix and len(quote) == 1 and "\\" not in body
            found.append(_Token("string", text[at : end + len(quote)], body if plain else None))
            at = end + len(quote)
            continue
        if kind == "punct" and match.group() == "`":
            return None
        found.append(_Token(kind, match.group()))
        at = match.end()
    return found


# A path step meaning "each element of the list here" (no CEL field can be spelt so).
EACH = "\0each"
# Macros whose result never hands out the elements themselves (filter does).
_ELEMENT_MACROS = frozenset({"all", "exists", "exists_one", "map"})

Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Reading:
    """What the tokens tell: what the expression reads from `object`, the names its macros
    bind, and how deep comprehension macros nest.

    `paths` are (path, whole) pairs: `whole` paths are read as values (everything below
    them is kept); the others are lists a macro iterates over, whose elements are kept as
    far as the macro's body reads them (`object.spec.containers.all(c, c.image != '')`
    keeps each container's image only). None: `object` itself is used, keep all of it.
    """

    paths: tuple[tuple[Path, bool], ...] | None
    binders: frozenset[str]
    nesting: int


@dataclass(slots=True)
class _Scope:
    name: str
    base: Path | None  # the path of the elements the name is bound to; None: not object's
    level: int  # the parenthesis depth inside the macro's call


def _read(tokens: Sequence[_Token]) -> _Reading:
    paths: list[tuple[Path, bool]] = []
    whole_document = False
    binders: set[str] = set()
    scopes: list[_Scope] = []
    open_macros: list[int] = []
    pending: dict[int, Path] = {}  # macro token index -> the path of its receiver's elements
    declared: set[int] = set()  # token indexes of names a macro binds
    depth = nesting = 0

    def text(i: int) -> str:
        return tokens[i].text if 0 <= i < len(tokens) else ""

    def ident(i: int) -> bool:
        return 0 <= i < len(tokens) and tokens[i].kind == "ident"

    def chain(j: int) -> tuple[list[str], int]:
        steps: list[str] = []
        while True:
            if text(j) == "." and ident(j + 1) and text(j + 2) != "(":
                steps.append(tokens[j + 1].text)
                j += 2
            elif text(j) == "[" and text(j + 2) == "]" and tokens[j + 1].key is not None:
                steps.append(tokens[j + 1].key or "")
                j += 3
            else:
                return steps, j

    for i, token in enumerate(tokens):
        if token.kind == "punct":
            if token.text == "(":
                depth += 1
            elif token.text == ")":
                depth -= 1
                while open_macros and open_macros[-1] > depth:
                    open_macros.pop()
                while scopes and scopes[-1].level > depth:
                    scopes.pop()
            continue
        if token.kind != "ident" or i in declared:
            continue
        if text(i - 1) == ".":
            if token.text in MACROS and text(i + 1) == "(":
                open_macros.append(depth + 1)
                nesting = max(nesting, len(open_macros))
                if ident(i + 2) and text(i + 3) == ",":
                    name = tokens[i + 2].text
                    binders.add(name)
                    declared.add(i + 2)
                    whole_document |= name == "object"  # shadowing: do not try to follow
                    scopes.append(_Scope(name, pending.get(i), depth + 1))
            continue
        scope = next((s for s in reversed(scopes) if s.name == token.text), None)
        if scope is not None:
            if scope.base is None:
                continue  # bound to something other than the document's data
            base = scope.base
        elif token.text == "object":
            base = ()
        else:
            continue
        steps, j = chain(i + 1)
        path = (*base, *steps)
        if not path:
            whole_document = True
            continue
        macro = j + 1
        if (
            text(j) == "."
            and text(macro) in _ELEMENT_MACROS
            and text(macro + 1) == "("
            and ident(macro + 2)
            and text(macro + 3) == ","
        ):
            pending[macro] = (*path, EACH)
            paths.append(((*path, EACH), False))
        else:
            paths.append((path, True))
    return _Reading(None if whole_document else tuple(paths), frozenset(binders), nesting)


# --- compiling --------------------------------------------------------------------------

_ERROR_AT = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)")


def _syntax_problem(error: Exception, text: str) -> str:
    found = _ERROR_AT.findall(str(error))
    if not found:
        return f"CEL syntax error: {' '.join(str(error).split())[:300]}"
    one_line = "\n" not in text
    parts = []
    for line, column, what in found[:3]:
        where = f"column {column}" if one_line else f"line {line}, column {column}"
        parts.append(f"{where}: {what.strip()}")
    return ("CEL syntax error at " + "; ".join(parts))[:500]


@dataclass(frozen=True, slots=True)
class _Compiled:
    program: Any
    reading: _Reading | None  # None when the scanner could not read the tokens
    functions: frozenset[str]  # the registered helpers the expression calls


@lru_cache(maxsize=1024)
def _compile(text: str) -> _Compiled | str:
    """The compiled expression, or why it does not compile (cached per text)."""
    if len(text) > MAX_EXPRESSION:
        return f"the expression has {len(text)} characters; at most {MAX_EXPRESSION} are allowed"
    if not text.strip():
        return "the expression is empty"
    try:
        program = _library().compile(text)
    except Exception as error:  # the library raises ValueError; anything else is as bad
        return _syntax_problem(error, text)
    called = {name for name in program.functions() if name.isidentifier()}
    unknown = sorted(called - BUILTINS - FUNCTIONS.keys())
    if unknown:
        return (
            f"unknown function {', '.join(unknown)}: CEL's standard functions and the "
            "helpers listed in docs/policy.md are available"
        )
    tokens = _tokens(text)
    reading = _read(tokens) if tokens is not None else None
    if reading is not None:
        if reading.nesting > MAX_MACRO_NESTING:
            return (
                f"comprehension macros (all, exists, exists_one, map, filter) are nested "
                f"{reading.nesting} deep; at most {MAX_MACRO_NESTING} are allowed"
            )
        names = set(program.variables()) - set(VARIABLES) - reading.binders - _NAMESPACES
        if names:
            return (
                f"unknown variable {', '.join(sorted(names))}: the expression can use "
                f"{', '.join(VARIABLES)}"
            )
    return _Compiled(program, reading, frozenset(called & FUNCTIONS.keys()))


def compile_problem(text: str) -> str | None:
    """Why an expression does not compile, or None when it does."""
    compiled = _compile(text)
    return compiled if isinstance(compiled, str) else None


# --- turning documents into the library's values ----------------------------------------

_Trie = dict[str, "_Trie | None"]  # None: keep everything below


def _trie(paths: Iterable[tuple[Path, bool]]) -> _Trie:
    root: _Trie = {}
    for path, whole in paths:
        node: _Trie = root
        for step in path[:-1]:
            below = node.setdefault(step, {})
            if below is None:
                break
            node = below
        else:
            last = path[-1]
            if whole:
                node[last] = None
            elif last not in node:
                node[last] = {}
    return root


def _prune(data: Any, trie: _Trie) -> Any:
    """The parts of data the trie names; what it cannot tell apart is kept whole."""
    if isinstance(data, list):
        if len(trie) == 1 and EACH in trie:
            below = trie[EACH]
            return data if below is None else [_prune(item, below) for item in data]
        return data
    if not isinstance(data, dict) or EACH in trie:  # a macro over a map binds its keys
        return data
    kept = {}
    for key, below in trie.items():
        if key not in data:
            # Keys that are not strings (data no YAML or JSON reader makes) read as JSON
            # would write them; looked for only when a key is missing, so never on the way
            # of ordinary documents.
            if all(isinstance(k, str) for k in data):
                continue
            data = {_key(k): v for k, v in data.items()}
            if key not in data:
                continue
        value = data[key]
        kept[key] = value if below is None else _prune(value, below)
    return kept


def _merge(a: _Trie, b: _Trie) -> _Trie:
    merged = dict(a)
    for key, below in b.items():
        if key not in merged:
            merged[key] = below
        else:
            mine = merged[key]
            merged[key] = None if mine is None or below is None else _merge(mine, below)
    return merged


def _plain(value: Any) -> Any:
    """Data the library cannot take (sets, dates, non-string keys) as JSON would carry it."""
    if isinstance(value, dict):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    return str(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


# --- evaluation -------------------------------------------------------------------------

_PYTHON_FAILURE = re.compile(
    r"Function '([^']+)' error: Python function call failed: \w+: (.*?)"
    r"(?:\.? Check function arguments and their types\.)?$"
)


def _reason(error: Exception) -> str:
    """The library's error as one short line."""
    text = " ".join(str(error).split())
    found = _PYTHON_FAILURE.match(text)
    if found:
        return f"{found[1]}(): {found[2]}"[:300]
    if isinstance(error, KeyError):
        return f"no such key: {text} (guard optional fields with has())"[:300]
    for tail in (" Check function arguments", " Check that the variable", " CEL does not coerce"):
        text = text.split(tail, 1)[0]
    return text.rstrip(". ")[:300] or type(error).__name__


def _execute(compiled: _Compiled, variables: Mapping[str, Any]) -> Any:
    functions = {name: FUNCTIONS[name] for name in compiled.functions}
    try:
        return compiled.program.execute(_library().Context(dict(variables), functions))
    except ValueError as error:
        if "Conversion Error" not in str(error):
            raise
    # Data of a type the library does not take (a set, a date): its JSON form instead.
    variables = {**variables, "object": _plain(variables.get("object"))}
    return compiled.program.execute(_library().Context(variables, functions))


def evaluate(text: str, variables: Mapping[str, Any] | None = None) -> Any:
    """One expression's value, with the variables given (the others empty or false).

    For trying an expression and for tests; raises ValueError saying why the expression
    does not compile or could not be evaluated.
    """
    compiled = _compile(text)
    if isinstance(compiled, str):
        raise ValueError(compiled)
    bound = {"object": None, "environment": "", "production": False, "tenant": ""}
    bound.update(variables or {})
    try:
        return _execute(compiled, bound)
    except Exception as error:
        raise ValueError(_reason(error)) from None


@dataclass(frozen=True, slots=True)
class CelRule:
    """A PolicyRule compiled: its info, its programs and how to cut documents down."""

    info: RuleInfo
    spec: PolicyRuleSpec = field(repr=False)
    expression: _Compiled = field(repr=False)
    message_expression: _Compiled | None = field(repr=False)
    trie: _Trie | None = field(repr=False)  # None: hand over whole documents
    budget_seconds: float = RULE_BUDGET_SECONDS

    def documents(self, changeset: ChangeSet) -> Iterator[Document]:
        """The documents the rule's match selects, in input order of each format or kind."""
        match = self.spec.match
        kinds, versions, namespaces = match.kinds, match.api_versions, match.namespaces
        formats = list(dict.fromkeys(match.formats))
        exact_kinds = kinds and not any(set(k) & set("*?[") for k in kinds)
        candidates: Iterable[Document]
        if formats == [Format.KUBERNETES] and exact_kinds:
            candidates = changeset.of_kind(*dict.fromkeys(kinds))
            kinds = []
        else:
            candidates = (d for f in formats for d in changeset.of_format(f))
        for document in candidates:
            if kinds and not any(fnmatchcase(document.kind, k) for k in kinds):
                continue
            if versions and not any(fnmatchcase(document.api_version, v) for v in versions):
                continue
            if namespaces and not any(fnmatchcase(document.namespace, n) for n in namespaces):
                continue
            yield document

    def check(self, changeset: ChangeSet, context: CheckContext) -> Iterator[Hit]:
        started = time.monotonic()
        selected = list(self.documents(changeset))
        environment = context.environment or ""
        for done, document in enumerate(selected):
            if done and time.monotonic() - started > self.budget_seconds:
                yield Hit(
                    document,
                    (),
                    f"the rule stopped after {self.budget_seconds:g} s: its expression is "
                    f"too costly; {len(selected) - done} of {len(selected)} documents were "
                    "not checked",
                )
                return
            variables = {
                "object": document.data,
                "environment": environment,
                "production": context.production,
                "tenant": context.tenant_of(document.namespace),
            }
            hit = self._evaluate(document, variables)
            if hit is not None:
                yield hit

    def _run(self, compiled: _Compiled, variables: dict[str, Any]) -> Any:
        if self.trie is not None:
            variables = {**variables, "object": _prune(variables["object"], self.trie)}
        return _execute(compiled, variables)

    def _evaluate(self, document: Document, variables: dict[str, Any]) -> Hit | None:
        try:
            result = self._run(self.expression, variables)
        except Exception as error:  # any library error is the document's failure
            return Hit(
                document,
                (),
                f"the rule's expression could not be evaluated: {_reason(error)}",
            )
        if result is True:
            return None
        if result is not False:
            return Hit(
                document,
                (),
                f"the rule's expression gave {_type_name(result)} {str(result)[:80]!r}, not a bool",
            )
        return Hit(document, (), self._message(variables))

    def _message(self, variables: dict[str, Any]) -> str:
        if self.message_expression is not None:
            try:
                text = self._run(self.message_expression, variables)
            except Exception:  # as Kubernetes does: fall back to `message`
                text = None
            if isinstance(text, str) and text.strip() and "\n" not in text and "\r" not in text:
                text = text.strip()
                return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
        return self.spec.message


def compile_rule(
    rule_id: str, spec: PolicyRuleSpec, *, budget_seconds: float = RULE_BUDGET_SECONDS
) -> CelRule:
    """A custom rule from a PolicyRule entity; its catalog id becomes the rule id.

    Raises ValueError when an expression does not compile (the spec's validation already
    refuses those, so this only happens to a spec built without validation).
    """
    expression = _compile(spec.expression)
    if isinstance(expression, str):
        raise ValueError(f"rule {rule_id}: expression: {expression}")
    message_expression = None
    if spec.message_expression is not None:
        compiled = _compile(spec.message_expression)
        if isinstance(compiled, str):
            raise ValueError(f"rule {rule_id}: message_expression: {compiled}")
        message_expression = compiled
    trie: _Trie | None = _trie(())
    for each in (expression, message_expression):
        if each is None:
            continue
        if trie is None or each.reading is None or each.reading.paths is None:
            trie = None
            continue
        trie = _merge(trie, _trie(each.reading.paths))
    info = RuleInfo(
        id=rule_id,
        title=spec.title,
        severity=spec.severity,
        rationale=spec.rationale,
        remediation=spec.remediation,
        pack=rule_id.split(".", 1)[0],
        aliases=tuple(spec.aliases),
        waivable=spec.waivable,
    )
    return CelRule(info, spec, expression, message_expression, trie, budget_seconds)


__all__ = ["FUNCTIONS", "CelRule", "compile_problem", "compile_rule", "evaluate"]
