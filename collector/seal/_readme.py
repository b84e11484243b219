"""README.txt inside every snapshot: what it is and how to verify and sample it without us."""

from __future__ import annotations

__all__ = ["readme_text"]

_TEMPLATE_V1 = """\
Evidence snapshot {name}
{underline}

Window {window} ({start} to {end}, end exclusive), {label}.
{count} evidence records, Merkle root (RFC 9162, SHA-256) {root}.
Sealed at {sealed_at} with the Ed25519 key whose SPKI SHA-256 fingerprint is
  {fingerprint}
Trust this snapshot only if that fingerprint matches the one the organisation gave you
out of band (not the copy in keys/seal.pub.pem, which travels here only for convenience).

Contents
  manifest.json            window, counts per criterion, Merkle root, chain link, key
  records.jsonl            one RFC 8785 (JCS) record per line, sorted by (observed_at, id)
  controls/<ID>.csv        the population of each criterion, for sampling (a cell that
                           would start a spreadsheet formula, = + - @, begins with ' so
                           it shows as text; records.jsonl keeps the exact value)
  oscal/assessment-results.json   OSCAL {oscal} assessment results for the window
  keys/seal.pub.pem        the public sealing key
  SHA256SUMS               SHA-256 of every file above and of this README
  SHA256SUMS.ed25519       raw Ed25519 signature over SHA256SUMS
  SHA256SUMS.ed25519.tsr   (when present) RFC 3161 timestamp token over the signature

Route 1: the collector (signature, every file hash, every record, the populations, the
manifest's counts and Merkle root, the chain's links and order; names the first failing part.
The OSCAL file is covered by the signature, but is a summary it does not re-derive.)
  pip install evidence-collector
  collector verify {name} --fingerprint {fingerprint}
  # several snapshots in sealing order also verify the chain between them:
  collector verify 2026-10.tar 2026-11.tar --key seal.pub.pem

Route 2: plain tools (signature and file hashes)
  mkdir s && tar -xf {name} -C s && cd s
  openssl pkey -pubin -in keys/seal.pub.pem -outform DER | sha256sum   # must print the fingerprint
  openssl pkeyutl -verify -pubin -inkey keys/seal.pub.pem -rawin \\
      -in SHA256SUMS -sigfile SHA256SUMS.ed25519                        # "Signature Verified Successfully"
  sha256sum -c --strict SHA256SUMS                                      # every line "OK"
  ls -R                       # nothing beyond the files SHA256SUMS lists and the three signature files
  # timestamp, when present (tsa-ca.pem is the time-stamping authority's CA certificate):
  openssl ts -verify -in SHA256SUMS.ed25519.tsr -data SHA256SUMS.ed25519 -CAfile tsa-ca.pem
What route 2 does not check: each record's id (SHA-256 of the record without id,
collected_at and run_id), order, window bounds, the Merkle root, the populations against
the records, the manifest's counts, and the chain. A timestamp token is optional: its
absence proves nothing either way.
Recompute them with route 1, or with the recipes below.

Record id: JCS bytes of the record object without "id", "collected_at" and "run_id".
Merkle root: leaf = SHA-256(0x00 || line without its newline), node = SHA-256(0x01 || L || R),
split at the largest power of two below n (RFC 9162, section 2.1.1). As a Python file:
    import hashlib
    def H(b): return hashlib.sha256(b).digest()
    def mth(l):
        if len(l) <= 1: return H(b"\\0" + l[0]) if l else H(b"")
        k = 1 << ((len(l) - 1).bit_length() - 1)
        return H(b"\\1" + mth(l[:k]) + mth(l[k:]))
    print(mth(open("records.jsonl", "rb").read().splitlines()).hex())

Chain: manifest.previous names the snapshot sealed just before this one (window, seq,
merkle_root, tree_size, sums_sha256 = SHA-256 of its SHA256SUMS, signature = its
SHA256SUMS.ed25519 in hex); the first snapshot has "genesis": true. An amendment
(<window>.amend-<n>.tar, "amends": window) holds records of an already sealed window that
were stored after it was sealed; it is chained like any other snapshot.

Sampling (collector sample {name} --control CC6.1 --size 25 --seed <your text>)
For a criterion C, rank every population row of controls/C.csv by
  SHA-256( seed + ":" + merkle_root + ":" + C + ":" + record_id )   as lower-case hex text
(without a seed: SHA-256( merkle_root + ":" + C + ":" + record_id )) and take the N
smallest, in rank order. The same snapshot and seed always give the same sample. Whoever
sealed the snapshot chose its Merkle root, so choose the seed yourself, after you received
the snapshot: then nobody on the sealing side could have steered the sample. Rows with a
line break inside a quoted cell need collector sample. In a shell:
  seed='your text'
  root=$(python3 -c 'import json;print(json.load(open("manifest.json"))["merkle"]["root"])')
  tail -n +2 controls/CC6.1.csv | cut -d, -f1 | while read -r id; do
    printf '%s %s\\n' "$(printf '%s' "$seed:$root:CC6.1:$id" | sha256sum | cut -c1-64)" "$id"
  done | sort | head -n 25
"""


_TEMPLATE_V2 = """\
Evidence snapshot {name}
{underline}

{what}
{count} evidence records, Merkle root (RFC 9162, SHA-256) {root}.
Sealed at {sealed_at} with the Ed25519 key whose SPKI SHA-256 fingerprint is
  {fingerprint}
Trust this snapshot only if that fingerprint matches the one the organisation gave you
out of band (not the copy in keys/seal.pub.pem, which travels here only for convenience).

Contents (schema evidence-collector/snapshot/v2)
  manifest.json            what this is, counts per criterion ("criteria") and per control
                           ("controls"), Merkle root, {link}key, SHA-256 of controls.json
  records.jsonl            one RFC 8785 (JCS) record per line, sorted by (observed_at, id)
  criteria/<ID>.csv        the population of each criterion in scope (empty ones too) and of
                           any other a record is filed under: the records whose "controls"
                           field lists it
  controls/<ID>.csv        the population of each of the organisation's controls: the records
                           its evidence selectors in controls.json match
  controls.json            the control library this snapshot was built with: each control's
                           statement, owner, criteria, cadence and selectors; the criteria in
                           scope, and the exclusions with their reasons
  files/sha256/<hex>       every document a record refers to ("file_sha256" in its data),
                           named by the SHA-256 of its bytes
  oscal/assessment-results.json   OSCAL {oscal} assessment results
  keys/seal.pub.pem        the public sealing key
  SHA256SUMS               SHA-256 of every file above (files/ too) and of this README
  SHA256SUMS.ed25519       raw Ed25519 signature over SHA256SUMS
  SHA256SUMS.ed25519.tsr   (when present) RFC 3161 timestamp token over the signature
(A population cell that would start a spreadsheet formula, = + - @, begins with ' so it
shows as text; records.jsonl keeps the exact value.)

Route 1: the collector (signature, every file hash, every record, the populations of the
criteria and controls re-derived from records.jsonl and controls.json, every document named
by its hash and present for each record that refers to one, nothing extra, the manifest's
counts and Merkle root, the chain's links and order; names the first failing part. The OSCAL
file is covered by the signature, but is a summary it does not re-derive.)
  pip install evidence-collector
  collector verify {name} --fingerprint {fingerprint}
  # several snapshots in sealing order also verify the chain between them:
  collector verify 2026-10.tar 2026-11.tar --key seal.pub.pem

Route 2: plain tools (signature and file hashes, documents included)
  mkdir s && tar -xf {name} -C s && cd s
  openssl pkey -pubin -in keys/seal.pub.pem -outform DER | sha256sum   # must print the fingerprint
  openssl pkeyutl -verify -pubin -inkey keys/seal.pub.pem -rawin \\
      -in SHA256SUMS -sigfile SHA256SUMS.ed25519                        # "Signature Verified Successfully"
  sha256sum -c --strict SHA256SUMS                                      # every line "OK"
  ls -R                       # nothing beyond the files SHA256SUMS lists and the three signature files
  # timestamp, when present (tsa-ca.pem is the time-stamping authority's CA certificate):
  openssl ts -verify -in SHA256SUMS.ed25519.tsr -data SHA256SUMS.ed25519 -CAfile tsa-ca.pem
  # a document is named by its own hash, so this prints its name back:
  #   sha256sum files/sha256/<hex>
What route 2 does not check: each record's id (SHA-256 of the record without id,
collected_at and run_id), order, {bounds}, the Merkle root, the populations against
the records and controls.json, that every document a record names is here, the manifest's
counts, and the chain. A timestamp token is optional: its absence proves nothing either way.
Recompute them with route 1, or with the recipes below.

Record id: JCS bytes of the record object without "id", "collected_at" and "run_id".
Merkle root: leaf = SHA-256(0x00 || line without its newline), node = SHA-256(0x01 || L || R),
split at the largest power of two below n (RFC 9162, section 2.1.1). As a Python file:
    import hashlib
    def H(b): return hashlib.sha256(b).digest()
    def mth(l):
        if len(l) <= 1: return H(b"\\0" + l[0]) if l else H(b"")
        k = 1 << ((len(l) - 1).bit_length() - 1)
        return H(b"\\1" + mth(l[:k]) + mth(l[k:]))
    print(mth(open("records.jsonl", "rb").read().splitlines()).hex())

Which records a control holds: those matched by one of its "evidence" selectors in
controls.json. {{"stream": S}} and {{"kind": K}} (alone or together) match a record whose
stream and kind equal every key the selector sets; {{"document": T}} matches a record of one of
the "document_streams" whose source_key starts with "T/". A criterion holds the records whose
"controls" field (the criteria the record was filed under when collected) lists it.

{chain}

Sampling (collector sample {name} --criterion CC6.1 --size 25 --seed <your text>;
--control <ID> samples the organisation's control <ID> from controls/<ID>.csv instead)
For a population P (a criterion id, or a control id), rank every row of criteria/P.csv (or
controls/P.csv) by
  SHA-256( seed + ":" + merkle_root + ":" + P + ":" + record_id )   as lower-case hex text
(without a seed: SHA-256( merkle_root + ":" + P + ":" + record_id )) and take the N
smallest, in rank order. The same snapshot and seed always give the same sample. Whoever
sealed the snapshot chose its Merkle root, so choose the seed yourself, after you received
the snapshot: then nobody on the sealing side could have steered the sample. Rows with a
line break inside a quoted cell need collector sample. In a shell:
  seed='your text'
  root=$(python3 -c 'import json;print(json.load(open("manifest.json"))["merkle"]["root"])')
  tail -n +2 criteria/CC6.1.csv | cut -d, -f1 | while read -r id; do
    printf '%s %s\\n' "$(printf '%s' "$seed:$root:CC6.1:$id" | sha256sum | cut -c1-64)" "$id"
  done | sort | head -n 25
"""

_GET_VERIFIER = """\
  # `collector verify` is the collector's own command; no package of it is published on PyPI
  # (do not `pip install` a name from there). Get the source repository from the organisation
  # and install the release that sealed this snapshot (manifest.json "collector"."version"),
  # tagged v<version>, or a commit hash they give you; verifying needs no database,
  # credentials or network:
  #   git clone <repository URL> ec && git -C ec checkout v<version>
  #   python3 -m venv v && v/bin/pip install ./ec
  v/bin/collector verify {name} --fingerprint {fingerprint}
  # several snapshots in sealing order also verify the chain between them:
  v/bin/collector verify 2026-10.tar 2026-11.tar --key seal.pub.pem
"""

_V2_ROUTE1 = """\
  pip install evidence-collector
  collector verify {name} --fingerprint {fingerprint}
  # several snapshots in sealing order also verify the chain between them:
  collector verify 2026-10.tar 2026-11.tar --key seal.pub.pem
"""

_V2_ROUTE2 = """\
Route 2: plain tools (signature and file hashes, documents included)
  mkdir s && tar -xf {name} -C s && cd s
"""

_V3_ROUTE2 = """\
Route 2: plain tools (signature and file hashes, documents included, nothing extra)
  mkdir s && tar -xf {name} -C s
  sh s/verify.sh {fingerprint}      # exit 0 and "OK"; or "FAILED: <file>: <why>" and exit 1
  # add the time-stamping authority's CA certificate to check a timestamp token:
  #   sh s/verify.sh {fingerprint} tsa-ca.pem
  # verify.sh runs only openssl, sha256sum and a POSIX shell; read it first (it is short),
  # or run the same steps by hand:
  cd s
"""


def _v3(template: str) -> str:
    """Schema v3's README: v2's, with verify.sh listed and used, and without `pip install`."""
    out = template
    for old, new in (
        ("Contents (schema evidence-collector/snapshot/v2)",
         "Contents (schema evidence-collector/snapshot/v3)"),
        ("  keys/seal.pub.pem        the public sealing key\n",
         "  keys/seal.pub.pem        the public sealing key\n"
         "  verify.sh                route 2 below as one POSIX shell script\n"),
        (_V2_ROUTE1, _GET_VERIFIER),
        (_V2_ROUTE2, _V3_ROUTE2),
    ):
        if old not in out:  # pragma: no cover - a template edit that broke v3's derivation
            raise AssertionError(f"v2 README template lost {old[:40]!r}")
        out = out.replace(old, new, 1)
    return out


_TEMPLATE_V3 = _v3(_TEMPLATE_V2)

_CHAIN_WINDOW = """\
Chain: manifest.previous names the snapshot sealed just before this one (window, seq,
merkle_root, tree_size, sums_sha256 = SHA-256 of its SHA256SUMS, signature = its
SHA256SUMS.ed25519 in hex); the first snapshot has "genesis": true. An amendment
(<window>.amend-<n>.tar, "amends": window) holds records of an already sealed window that
were stored after it was sealed; it is chained like any other snapshot. A snapshot sealed in
schema v1 may come before one in v2: the link is the same."""

_CHAIN_TYPE1 = """\
Chain: none. A Type 1 snapshot ("type": "type1") shows the design at one point in time and
stands outside the chain of window snapshots: it names no previous snapshot, and no window
snapshot names it. Its records are, for each state stream listed in "state_streams" and each
source_key, the newest read observed before as_of.end, and the newest record of each document
(manual.documents) observed before then."""


def readme_text(*, name: str, window: str, start: str, end: str, seq: int, count: int,
                root: str, sealed_at: str, fingerprint: str, oscal_version: str,
                schema: str = "evidence-collector/snapshot/v3", as_of: str | None = None) -> bytes:
    """The README of one snapshot (deterministic for the same arguments): schema v1's and v2's
    exactly as they were written (so those snapshots re-seal byte for byte), v2's and v3's for a
    window or, with ``as_of``, for a Type 1 snapshot whose records were observed before ``end``."""
    title = f"Evidence snapshot {name}"
    if schema == "evidence-collector/snapshot/v1":
        label = f"amendment {seq} of that window" if seq else "the window's sealed snapshot"
        text = _TEMPLATE_V1.format(
            name=name, underline="=" * len(title), window=window, start=start, end=end,
            label=label, count=count, root=root, sealed_at=sealed_at, fingerprint=fingerprint,
            oscal=oscal_version,
        )
        return text.encode("utf-8")
    if as_of is not None:
        what = (f"Type 1 (point in time) as of {as_of}: the control library, the newest read of\n"
                f"every state stream and the documents in force, observed before {end}.")
        link, bounds, chain = "", "observed_at before as_of.end", _CHAIN_TYPE1
    else:
        label = f"amendment {seq} of that window" if seq else "the window's sealed snapshot"
        what = f"Window {window} ({start} to {end}, end exclusive), {label}."
        link, bounds, chain = "chain link, ", "window bounds", _CHAIN_WINDOW
    template = _TEMPLATE_V2 if schema == "evidence-collector/snapshot/v2" else _TEMPLATE_V3
    text = template.format(
        name=name, underline="=" * len(title), what=what, count=count, root=root,
        sealed_at=sealed_at, fingerprint=fingerprint, oscal=oscal_version, link=link,
        bounds=bounds, chain=chain,
    )
    return text.encode("utf-8")
