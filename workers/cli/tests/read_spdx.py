"""Reads an SPDX document with spdx-tools (PyPI), the SPDX project's own Python library: parses
it, validates it fully against the specification, and prints what it read as JSON, so the test
compares another implementation's reading with what we wrote.

usage: read_spdx.py FILE
output: {"version": ..., "errors": [...], "packages": [[name, version, purl-or-null], ...]}
"""
import json
import sys

from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

document = parse_file(sys.argv[1])
errors = [m.validation_message for m in validate_full_spdx_document(document)]
packages = []
for package in document.packages:
    purls = [r.locator for r in package.external_references if r.reference_type == "purl"]
    packages.append([package.name, package.version, purls[0] if purls else None])
print(json.dumps({
    "version": document.creation_info.spdx_version,
    "errors": errors,
    "packages": sorted(packages, key=lambda p: (p[0], p[1] or "", p[2] or "")),
    "relationships": len(document.relationships),
}))
