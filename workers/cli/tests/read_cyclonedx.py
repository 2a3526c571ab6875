"""Reads a CycloneDX JSON document with cyclonedx-python-lib (PyPI), the CycloneDX project's own
Python library: validates it strictly against the schema of its specVersion (1.5 or 1.6),
deserializes it into the library's model, and prints what it read as JSON, so the test
compares another implementation's reading with what we wrote.

usage: read_cyclonedx.py FILE
output: {"specVersion": ..., "errors": [...], "components": [[name, version, purl-or-null], ...],
         "dependencies": N, "serialNumber": ...}
"""
import json
import sys

from cyclonedx.model.bom import Bom
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

with open(sys.argv[1], encoding="utf-8") as f:
    text = f.read()
data = json.loads(text)
version = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6}[data["specVersion"]]
error = JsonStrictValidator(version).validate_str(text)
bom = Bom.from_json(data)
components = [
    [c.name, c.version, str(c.purl) if c.purl else None]
    for c in bom.components
]
print(json.dumps({
    "specVersion": data["specVersion"],
    "errors": [str(error)] if error else [],
    "components": sorted(components, key=lambda c: (c[0], c[1] or "", c[2] or "")),
    "dependencies": len(bom.dependencies),
    "serialNumber": str(bom.serial_number),
}))
