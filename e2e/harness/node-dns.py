#!/usr/bin/env python3
"""Cluster DNS records for the test node, kept in step with the API server by a watch.

    node-dns.py sync --server URL --token-file F --ca F --hosts F --dnsmasq-pid-file F [--ready F]
        Lists Services and Endpoints, writes a hosts file for dnsmasq (`--addn-hosts`), sends
        dnsmasq SIGHUP so it rereads it, touches --ready after the first write, then watches
        both kinds and rewrites the file on every change (a watch, not a poll: a new Service
        resolves as soon as the API server has it). Records:
          <service>.<namespace>.svc.<domain>            the ClusterIP, or for a headless Service
                                                         every ready endpoint address
          <hostname>.<service>.<namespace>.svc.<domain> an endpoint with a hostname (StatefulSet
                                                         Pods of a headless governing Service)
        ExternalName Services get no record.

    node-dns.py query --server IP NAME
        Asks the DNS server IP (UDP port 53) for NAME's A records; prints them, one a line, and
        exits 1 when there are none.

Only the standard library: it runs on the host before anything else of the node works.
"""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse


def log(message):
    print(time.strftime("%H:%M:%S"), message, file=sys.stderr, flush=True)


class Api:
    def __init__(self, server, token_file, ca):
        url = urllib.parse.urlsplit(server)
        self.host, self.port = url.hostname, url.port or 443
        self.token_file = token_file
        self.context = ssl.create_default_context(cafile=ca)

    def request(self, path, timeout):
        with open(self.token_file) as f:
            token = f.read().strip()
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)
        conn.request("GET", path, headers={"Authorization": "Bearer " + token, "Accept": "application/json"})
        response = conn.getresponse()
        if response.status != 200:
            body = response.read(2000).decode(errors="replace")
            conn.close()
            raise RuntimeError(f"GET {path}: HTTP {response.status}: {body}")
        return conn, response


class Records:
    """Services and Endpoints by namespace/name; renders the hosts file."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.objects = {"services": {}, "endpoints": {}}
        self.synced = set()
        self.dirty = threading.Event()

    def replace(self, kind, items):
        with self.lock:
            self.objects[kind] = {self.key(o): o for o in items}
            self.synced.add(kind)
        self.dirty.set()

    def apply(self, kind, event):
        obj = event["object"]
        with self.lock:
            if event["type"] == "DELETED":
                self.objects[kind].pop(self.key(obj), None)
            else:
                self.objects[kind][self.key(obj)] = obj
        self.dirty.set()

    @staticmethod
    def key(obj):
        return obj["metadata"]["namespace"] + "/" + obj["metadata"]["name"]

    def render(self):
        domain = self.args.domain
        lines = []
        with self.lock:
            services = dict(self.objects["services"])
            endpoints = dict(self.objects["endpoints"])
        for key in sorted(services):
            spec = services[key].get("spec", {})
            namespace, name = key.split("/", 1)
            fqdn = f"{name}.{namespace}.svc.{domain}"
            ip = spec.get("clusterIP")
            if spec.get("type") == "ExternalName":
                continue
            if ip and ip != "None":
                lines.append(f"{ip} {fqdn}")
                continue
            for subset in endpoints.get(key, {}).get("subsets") or []:
                for address in subset.get("addresses") or []:
                    lines.append(f"{address['ip']} {fqdn}")
                    if address.get("hostname"):
                        lines.append(f"{address['ip']} {address['hostname']}.{fqdn}")
        return "".join(line + "\n" for line in lines)

    def writer(self):
        written = None
        while True:
            self.dirty.wait()
            self.dirty.clear()
            with self.lock:
                if self.synced != {"services", "endpoints"}:
                    continue
            text = self.render()
            if text != written:
                tmp = self.args.hosts + ".tmp"
                with open(tmp, "w") as f:
                    f.write(text)
                os.chmod(tmp, 0o644)
                os.replace(tmp, self.args.hosts)
                hup(self.args.dnsmasq_pid_file)
                written = text
                log(f"wrote {text.count(chr(10))} records")
            if self.args.ready and not os.path.exists(self.args.ready):
                open(self.args.ready, "w").close()


def hup(pid_file):
    with open(pid_file) as f:
        os.kill(int(f.read().strip()), signal.SIGHUP)


def follow(api, records, kind):
    """List, then watch from the list's resourceVersion; relist when the watch ends badly."""
    path = f"/api/v1/{kind}"
    while True:
        try:
            conn, response = api.request(path, timeout=30)
            listing = json.loads(response.read())
            conn.close()
            records.replace(kind, listing.get("items") or [])
            version = listing["metadata"]["resourceVersion"]
            while True:
                query = urllib.parse.urlencode(
                    {"watch": "1", "resourceVersion": version, "allowWatchBookmarks": "true", "timeoutSeconds": "300"}
                )
                conn, response = api.request(f"{path}?{query}", timeout=330)
                gone = False
                for line in response:
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        gone = True  # typically 410 Gone: the version is too old; relist
                        break
                    version = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        records.apply(kind, event)
                conn.close()
                if gone:
                    break
        except Exception as error:  # the API server restarting, a dropped connection
            log(f"{kind}: {error}; relisting in 1s")
            time.sleep(1)


def sync(args):
    api = Api(args.server, args.token_file, args.ca)
    records = Records(args)
    for kind in ("services", "endpoints"):
        threading.Thread(target=follow, args=(api, records, kind), daemon=True).start()
    records.writer()


def query(args):
    ident = random.randrange(65536)
    question = b"".join(bytes([len(p)]) + p.encode() for p in args.name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 1, 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(args.timeout)
    sock.sendto(packet, (args.server, 53))
    data, _ = sock.recvfrom(4096)
    rid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", data[:12])
    if rid != ident:
        sys.exit(f"answer for another query ({rid} != {ident})")
    offset = 12 + len(question) + 4
    addresses = []
    for _ in range(an):
        offset = skip_name(data, offset)
        rtype, _, _, length = struct.unpack(">HHIH", data[offset : offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntoa(data[offset : offset + 4]))
        offset += length
    for address in addresses:
        print(address)
    if not addresses:
        sys.exit(f"no A record for {args.name} (rcode {flags & 0xF})")


def skip_name(data, offset):
    while True:
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        offset += 1 + length


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sync")
    s.add_argument("--server", required=True)
    s.add_argument("--token-file", required=True)
    s.add_argument("--ca", required=True)
    s.add_argument("--hosts", required=True)
    s.add_argument("--dnsmasq-pid-file", required=True)
    s.add_argument("--domain", default="cluster.local")
    s.add_argument("--ready")
    q = sub.add_parser("query")
    q.add_argument("--server", required=True)
    q.add_argument("--timeout", type=float, default=2.0)
    q.add_argument("name")
    args = parser.parse_args()
    sync(args) if args.command == "sync" else query(args)


if __name__ == "__main__":
    main()
