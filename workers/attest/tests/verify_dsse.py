"""Independent verification of a Stella Ops DSSE envelope: securesystemslib's DSSE verifier
checks the signature over the PAE with the given public key, and in-toto-attestation's v1
Statement validator checks the payload. Prints the statement's predicate type; exits non-zero
with the reason when anything fails.

usage: verify_dsse.py ENVELOPE PUBLIC_KEY_PEM KEYID SCHEME
"""
import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

envelope_path, key_path, keyid, scheme = sys.argv[1:5]
with open(envelope_path, "rb") as f:
    envelope = Envelope.from_dict(json.load(f))
with open(key_path, "rb") as f:
    key = SSlibKey.from_crypto(load_pem_public_key(f.read()), keyid=keyid, scheme=scheme)
accepted = envelope.verify([key], 1)
assert keyid in accepted, f"not accepted by {keyid}: {accepted}"
assert envelope.payload_type == "application/vnd.in-toto+json", envelope.payload_type
pb = json_format.Parse(envelope.payload, statement_pb2.Statement())
Statement.copy_from_pb(pb).validate()
print(pb.predicate_type)
