"""What a snapshot contains and how its parts are written: shared by sealing and verification.

Standard library only (orjson is used when installed, for speed; both paths produce the same
RFC 8785 bytes for the record profile), so that verification stays light.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

from collector.seal.merkle import MerkleTree

__all__ = [
    "CHAINED_FIELDS",
    "CSV_HEADER",
    "FILES_PREFIX",
    "FILE_KEY",
    "FILE_LIBRARY",
    "FILE_MANIFEST",
    "FILE_OSCAL",
    "FILE_README",
    "FILE_RECORDS",
    "FILE_SIG",
    "FILE_SUMS",
    "FILE_TSR",
    "FILE_VERIFY_SH",
    "MAX_SUMS_FILE",
    "MERKLE_ALG",
    "SCHEMA",
    "SCHEMAS",
    "SCHEMA_V1",
    "SCHEMA_V2",
    "SCHEMA_V3",
    "SIGNATURE_FILES",
    "TS_PATTERN",
    "CsvLine",
    "Population",
    "RecordWalk",
    "blob_file",
    "canonical",
    "chain_link",
    "checked_ref",
    "control_file",
    "criterion_file",
    "file_ref",
    "loads",
    "parse_sums",
    "sample_rank",
    "sums_text",
]

SCHEMA_V1 = "evidence-collector/snapshot/v1"
SCHEMA_V2 = "evidence-collector/snapshot/v2"
SCHEMA_V3 = "evidence-collector/snapshot/v3"
"""v2's layout plus ``verify.sh`` (the plain-tool route as a POSIX shell script)."""
SCHEMA = SCHEMA_V3
"""The schema every new seal writes; ``verify`` and ``sample`` read v1, v2 and v3."""
SCHEMAS = (SCHEMA_V1, SCHEMA_V2, SCHEMA_V3)
MERKLE_ALG = "rfc9162-sha256"
MAX_SMALL_FILE = 1 << 20
"""Manifest, signature, key, README, controls.json: a larger one is not a snapshot's."""
MAX_SUMS_FILE = 16 << 20
"""SHA256SUMS lists every file, documents included (about 100 bytes a line)."""
MAX_RECORD_BYTES = 64 << 20
"""One record line (or one population cell): far above any real one, so a crafted one cannot
eat memory."""
FILE_MANIFEST = "manifest.json"
FILE_RECORDS = "records.jsonl"
FILE_OSCAL = "oscal/assessment-results.json"
FILE_README = "README.txt"
FILE_LIBRARY = "controls.json"
FILES_PREFIX = "files/sha256/"
FILE_KEY = "keys/seal.pub.pem"
FILE_SUMS = "SHA256SUMS"
FILE_SIG = "SHA256SUMS.ed25519"
FILE_TSR = "SHA256SUMS.ed25519.tsr"
FILE_VERIFY_SH = "verify.sh"
SIGNATURE_FILES = (FILE_SUMS, FILE_SIG, FILE_TSR)
CSV_HEADER = ("record_id", "observed_at", "stream", "source_key", "actor", "status",
              "exception_reason", "source_url")
CHAINED_FIELDS = ("window", "seq", "merkle_root", "tree_size", "sums_sha256", "signature")
TS_PATTERN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_CRITERION = re.compile(r"[A-Z]{1,2}\d\.\d{1,2}")
# An organisation's control id, as the library validates it: it names controls/<ID>.csv.
_CONTROL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SUMS_LINE = re.compile(r"SHA256 \(([^()\n]+)\) = ([0-9a-f]{64})")


def _stdlib_canonical() -> Callable[[Any], bytes]:
    encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode

    def dumps(value: Any) -> bytes:
        return encode(value).encode("utf-8")

    return dumps


_MAX_SAFE = 2**53 - 1


def _reject_float(text: str) -> Any:
    raise ValueError(f"number {text} is not an integer (floats are outside the record profile)")


def _checked_int(text: str) -> int:
    value = int(text)
    if -_MAX_SAFE <= value <= _MAX_SAFE:
        return value
    raise ValueError(f"integer {text} is outside +/-(2**53-1)")


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


_DECODER = json.JSONDecoder(parse_float=_reject_float, parse_int=_checked_int,
                            parse_constant=_reject_constant)


decode_text = _DECODER.decode
"""``loads`` for text already decoded."""


MAX_DEPTH = 64
"""Nesting depth of a manifest or controls.json (theirs is under 6): deeper is refused before
parsing, so a crafted file is one ValueError, never a RecursionError."""
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def _nesting(text: str) -> int:
    depth = deepest = 0
    for char in _BRACKETS.findall(_STRINGS.sub("", text)):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def loads(data: bytes | str) -> Any:
    """Parse JSON strictly inside the record profile: floats, huge integers, NaN and nesting
    deeper than ``MAX_DEPTH`` are errors (ValueError). For the small files (manifest,
    controls.json): records go through ``decode_text``."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if _nesting(text) > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    return _DECODER.decode(text)


stdlib_canonical = _stdlib_canonical()

canonical: Callable[[Any], bytes]
"""RFC 8785 bytes of a value inside the record profile (as parsed by ``loads``)."""
try:  # orjson ships with the collector; verification works without it, only slower
    import orjson as _orjson

    def _orjson_canonical(value: Any) -> bytes:
        return _orjson.dumps(value, option=_orjson.OPT_SORT_KEYS)

    canonical = _orjson_canonical
    FAST = True
except ImportError:  # pragma: no cover - exercised in a subprocess test
    canonical = stdlib_canonical
    FAST = False


def criterion_file(criterion: str, schema: str = SCHEMA) -> str:
    """The population file of a criterion (``criteria/<ID>.csv``; in schema v1
    ``controls/<ID>.csv``); refuses ids that are not criterion-shaped."""
    if type(criterion) is not str or not _CRITERION.fullmatch(criterion):
        raise ValueError(f"{criterion!r} is not a criterion id")
    return f"controls/{criterion}.csv" if schema == SCHEMA_V1 else f"criteria/{criterion}.csv"


def control_file(control_id: str) -> str:
    """The population file of one of the organisation's controls (schema v2); refuses ids the
    control library would refuse."""
    if type(control_id) is not str or not _CONTROL_ID.fullmatch(control_id):
        raise ValueError(f"{control_id!r} is not a control id")
    return f"controls/{control_id}.csv"


def blob_file(sha256: str) -> str:
    """Where a document with this SHA-256 travels in a snapshot: ``files/sha256/<hex>``."""
    return FILES_PREFIX + sha256


def file_ref(data: Any) -> str | None:
    """The blob a record refers to: its ``data.file_sha256`` (64 lower-case hex), or None when
    ``data`` has no such key. ValueError when the key holds anything else: the record names a
    file the snapshot could not carry."""
    if type(data) is not dict or "file_sha256" not in data:
        return None
    return checked_ref(data["file_sha256"])


def checked_ref(ref: Any) -> str:
    """``ref`` (a record's ``data.file_sha256``) when it is 64 lower-case hex; ValueError otherwise."""
    if type(ref) is not str or not _HEX64.fullmatch(ref):
        raise ValueError(f"data.file_sha256 {ref!r} is not a SHA-256 (64 lower-case hex digits)")
    return ref


# A cell starting with one of these is a formula to a spreadsheet (CSV injection): an actor
# or source key such as "=HYPERLINK(...)" would run when an auditor opens the population in
# Excel. Such a cell is written with a leading "'" (OWASP's advice), so it shows as text;
# records.jsonl keeps the exact value.
_FORMULA_START = frozenset("=+-@\t\r")


def _starts_formula(line: str) -> bool:
    """Whether a cell of ``line`` (which has no quoted commas) starts like a formula."""
    return bool(line) and (line[0] in _FORMULA_START or ",=" in line or ",+" in line
                           or ",-" in line or ",@" in line or ",\t" in line)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if type(value) is str else str(value)
    if text and text[0] in _FORMULA_START:
        text = "'" + text
    if "," in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


class CsvLine:
    """Formats one population row (RFC 4180, CRLF) the same way for sealing and verifying.

    The same bytes as ``csv.writer(lineterminator="\\r\\n")`` with minimal quoting, after
    cells that would start a spreadsheet formula get a leading "'" (a test holds this),
    several times faster.
    """

    def __call__(self, fields: Sequence[Any]) -> bytes:
        """The encoded line for ``fields`` (None becomes an empty cell)."""
        return (",".join([_cell(f) for f in fields]) + "\r\n").encode("utf-8")

    def header(self) -> bytes:
        """The header line of every population file."""
        return self(CSV_HEADER)

    def row(self, rid: Any, observed: Any, stream: Any, source_key: Any, actor: Any, status: Any,
            reason: Any, url: Any) -> bytes:
        """The population row of one record (the hot path: one join when nothing needs quoting
        or neutralising; anything else takes the general path)."""
        text = ",".join([
            "" if rid is None else f"{rid}", "" if observed is None else f"{observed}",
            "" if stream is None else f"{stream}", "" if source_key is None else f"{source_key}",
            "" if actor is None else f"{actor}", "" if status is None else f"{status}",
            "" if reason is None else f"{reason}", "" if url is None else f"{url}"])
        if (text.count(",") == 7 and '"' not in text and "\n" not in text and "\r" not in text
                and not _starts_formula(text)):
            return (text + "\r\n").encode("utf-8")
        return self((rid, observed, stream, source_key, actor, status, reason, url))

    def record(self, obj: dict[str, Any]) -> bytes:
        """The population row of a full record object."""
        return self.row(obj["id"], obj["observed_at"], obj["stream"], obj["source_key"], obj["actor"],
                        obj["status"], obj["exception_reason"], obj["source_url"])


class Population:
    """One population file (a criterion's or a control's) as its records are walked: the rows'
    SHA-256 (header first), how many rows and exceptions, the newest ``collected_at``, and where
    the sealer writes it (None when verifying)."""

    __slots__ = ("count", "digest", "exceptions", "last_collected", "out")

    def __init__(self, header: bytes, out: IO[bytes] | None) -> None:
        self.count = 0
        self.exceptions = 0
        self.last_collected: str | None = None
        self.digest = hashlib.sha256(header)
        self.out = out
        if out is not None:
            out.write(header)


class RecordWalk:
    """The lines of ``records.jsonl`` walked in file order, the same way by sealing and verifying.

    Per line: its Merkle leaf (``merkle.leaf_hash``, through ``MerkleTree.add``), the file's
    SHA-256, and its population row appended to each population it belongs to. Populations are
    keyed by whatever the caller names them (population file names, in sealing and verifying).
    ``open_population`` gives the file a new population is written to (sealing); without it only
    the hashes and counts are kept (verifying).
    """

    def __init__(self, open_population: Callable[[str], IO[bytes]] | None = None) -> None:
        self.tree = MerkleTree()
        self.digest = hashlib.sha256()
        self.populations: dict[str, Population] = {}
        self._open = open_population
        csv_line = CsvLine()
        self._row = csv_line.row
        self._header = csv_line.header()

    @property
    def count(self) -> int:
        """Record lines walked so far."""
        return self.tree.size

    def population(self, control: str) -> Population:
        """The population named ``control``, started (header written) on first use."""
        pop = self.populations.get(control)
        if pop is None:
            out = self._open(control) if self._open is not None else None
            pop = self.populations[control] = Population(self._header, out)
        return pop

    def row(self, record_id: Any, record: Mapping[str, Any]) -> bytes:
        """The population row of record ``record_id`` whose other fields are in ``record``;
        KeyError names a missing field."""
        return self._row(record_id, record["observed_at"], record["stream"], record["source_key"],
                         record["actor"], record["status"], record["exception_reason"],
                         record["source_url"])

    def add(self, line: bytes, row: bytes, controls: Iterable[str], exception: bool,
            collected_at: str | None = None) -> None:
        """Walk one record: ``line`` is its canonical bytes without the newline, ``row`` its
        population row, added to the populations named ``controls``; ``collected_at`` (when
        given) tracks each population's newest."""
        self.tree.add(line)
        update = self.digest.update
        update(line)
        update(b"\n")
        populations = self.populations
        for control in controls:
            pop = populations.get(control) or self.population(control)
            pop.count += 1
            pop.digest.update(row)
            if pop.out is not None:
                pop.out.write(row)
            if exception:
                pop.exceptions += 1
            if collected_at is not None and (pop.last_collected is None
                                             or collected_at > pop.last_collected):
                pop.last_collected = collected_at


def chain_link(window_id: str, seq: int, merkle_root: str, tree_size: int, sums_sha256: str,
               signature: str) -> dict[str, Any]:
    """The ``previous`` object a snapshot carries for the one it follows (``CHAINED_FIELDS``)."""
    return dict(zip(CHAINED_FIELDS, (window_id, seq, merkle_root, tree_size, sums_sha256,
                                     signature), strict=True))


def sums_text(hashes: dict[str, str]) -> bytes:
    """BSD-tagged SHA256SUMS (what ``sha256sum --tag`` writes), one line per file, sorted."""
    return "".join(f"SHA256 ({name}) = {hashes[name]}\n" for name in sorted(hashes)).encode()


def parse_sums(data: bytes) -> dict[str, str]:
    """Parse SHA256SUMS strictly; ValueError naming the first malformed or repeated line."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("is not ASCII text") from None
    if not text.endswith("\n"):
        raise ValueError("does not end with a newline")
    out: dict[str, str] = {}
    for number, line in enumerate(text[:-1].split("\n"), 1):
        match = _SUMS_LINE.fullmatch(line)
        if not match:
            raise ValueError(f"line {number} is not 'SHA256 (name) = hex'")
        if match.group(1) in out:
            raise ValueError(f"line {number} lists {match.group(1)} a second time")
        out[match.group(1)] = match.group(2)
    return out


def sample_rank(merkle_root: str, control: str, record_id: str, seed: str = "") -> str:
    """The sampling key: hex SHA-256 of ``[seed:]root:control:record_id``; the N smallest are the
    sample. The auditor's own ``seed``, chosen after receiving the snapshot, makes the sample
    one the sealer could not have steered (the sealer can re-roll its own Merkle root)."""
    text = f"{seed}:{merkle_root}:{control}:{record_id}" if seed else f"{merkle_root}:{control}:{record_id}"
    return hashlib.sha256(text.encode()).hexdigest()
