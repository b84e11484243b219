"""verify.sh inside every snapshot of schema v3: the plain-tool route as one POSIX shell script."""

from __future__ import annotations

__all__ = ["VERIFY_SH"]

# Kept to what POSIX sh (dash), openssl >= 3.0 (pkeyutl -rawin for Ed25519) and GNU sha256sum
# (-c --strict on BSD-tagged lines) provide: an auditor runs it with no collector installed.
# The fingerprint is an argument, never read from the snapshot: trust comes from out of band.
# `collector verify` checks that a v3 snapshot carries exactly these bytes, so a sealer cannot
# ship a script that says OK to anything; changing a byte here needs a new schema version.
VERIFY_SH = b"""\
#!/bin/sh
# Verify this evidence snapshot with plain tools: openssl (3.0 or later), sha256sum and a
# POSIX shell. Run it where the snapshot was extracted:
#   mkdir s && tar -xf <snapshot>.tar -C s && sh s/verify.sh <fingerprint> [tsa-ca.pem]
# <fingerprint> is the SPKI SHA-256 of the sealing key as the organisation gave it to you out
# of band (never the copy inside the snapshot). Checks: that keys/seal.pub.pem has that
# fingerprint, the Ed25519 signature over SHA256SUMS, every file's SHA-256, that no file is
# missing or extra, and (given the time-stamping authority's CA certificate) the timestamp.
# Not checked here (`collector verify` does): each record's id, order and window, the Merkle
# root, the populations against the records, the manifest's counts, and the chain.
# Exit 0: every check passed; 1: a check failed, the file named; 2: usage or a missing tool.
LC_ALL=C
export LC_ALL

fail() {
    printf 'verify.sh: FAILED: %s: %s\\n' "$1" "$2" >&2
    exit 1
}

usage() {
    printf 'verify.sh: %s\\nusage: sh verify.sh FINGERPRINT [TSA-CA.pem]\\n' "$1" >&2
    exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage "give the key fingerprint you were handed out of band"
want=$(printf '%s' "$1" | tr -d ':' | tr 'ABCDEF' 'abcdef')
case $want in
    *[!0-9a-f]*) usage "fingerprint $1: expected 64 hex digits (SPKI SHA-256)" ;;
esac
[ ${#want} -eq 64 ] || usage "fingerprint $1: expected 64 hex digits (SPKI SHA-256)"
ca=""
if [ $# -eq 2 ]; then
    case $2 in
        /*) ca=$2 ;;
        *) ca=$(pwd)/$2 ;;
    esac
    [ -f "$ca" ] || usage "$2: no such file"
fi
for tool in openssl sha256sum sed grep cut tr sort uniq find; do
    command -v "$tool" >/dev/null 2>&1 || usage "$tool is not installed"
done
here=$(dirname "$0")
cd "$here" || usage "cannot enter $here"

for file in SHA256SUMS SHA256SUMS.ed25519 keys/seal.pub.pem; do
    [ -f "$file" ] || fail "$file" "missing"
done

got=$(openssl pkey -pubin -in keys/seal.pub.pem -outform DER 2>/dev/null | sha256sum | cut -c1-64)
[ "$got" = "$want" ] || fail keys/seal.pub.pem \\
    "fingerprint is $got, not the $want you were given: not the organisation's key"

openssl pkeyutl -verify -pubin -inkey keys/seal.pub.pem -rawin -in SHA256SUMS \\
    -sigfile SHA256SUMS.ed25519 >/dev/null 2>&1 \\
    || fail SHA256SUMS.ed25519 "is not a valid signature over SHA256SUMS by that key"

bad=$(sed -n '/^SHA256 ([^()/][^()]*) = [0-9a-f]\\{64\\}$/!{=;q;}' SHA256SUMS)
[ -z "$bad" ] || fail SHA256SUMS "line $bad is not 'SHA256 (name) = hex'"
dots=$(sed -n 's/^SHA256 (\\(.*\\)) = .*$/\\1/p' SHA256SUMS | grep -n -E '(^|/)\\.\\.?(/|$)' | head -n 1)
[ -z "$dots" ] || fail SHA256SUMS "names a file outside the snapshot: $dots"

out=$(sha256sum -c --strict SHA256SUMS 2>/dev/null)
status=$?
line=$(printf '%s\\n' "$out" | grep ': FAILED' | head -n 1)
if [ -n "$line" ]; then
    case $line in
        *'FAILED open or read') fail "${line%: FAILED*}" "missing (listed in SHA256SUMS)" ;;
        *) fail "${line%: FAILED*}" "SHA-256 does not match SHA256SUMS" ;;
    esac
fi
[ "$status" -eq 0 ] || fail SHA256SUMS "sha256sum -c --strict failed"

extra=$( {
    sed -n 's/^SHA256 (\\(.*\\)) = .*$/\\1/p' SHA256SUMS
    sed -n 's/^SHA256 (\\(.*\\)) = .*$/\\1/p' SHA256SUMS
    printf '%s\\n' SHA256SUMS SHA256SUMS SHA256SUMS.ed25519 SHA256SUMS.ed25519 \\
        SHA256SUMS.ed25519.tsr SHA256SUMS.ed25519.tsr
    find . ! -type d | sed 's|^\\./||'
} | sort | uniq -u | head -n 1)
[ -z "$extra" ] || fail "$extra" "extra file: not listed in SHA256SUMS"

files=$(grep -c '' SHA256SUMS)
stamp="no timestamp token"
if [ -f SHA256SUMS.ed25519.tsr ]; then
    if [ -n "$ca" ]; then
        openssl ts -verify -in SHA256SUMS.ed25519.tsr -data SHA256SUMS.ed25519 -CAfile "$ca" \\
            >/dev/null 2>&1 || fail SHA256SUMS.ed25519.tsr "the timestamp token does not verify"
        stamp="timestamp verified"
    else
        stamp="timestamp not checked (give the TSA's CA certificate as the second argument)"
    fi
fi
printf 'verify.sh: OK: key %s, signature, %s files match SHA256SUMS, none extra; %s\\n' \\
    "$want" "$files" "$stamp"
printf 'verify.sh: record ids, Merkle root, populations and the chain: run collector verify\\n'
"""
