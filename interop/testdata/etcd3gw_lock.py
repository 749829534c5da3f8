"""A holder of etcd3gw locks, driven line by line on stdin, for interop tests.

Usage: etcd3gw_lock.py HOST PORT. Commands, one per line; each answers one
line on stdout:
  acquire NAME TTL   take etcd3gw's Lock(NAME) with a lease of TTL seconds:
                     prints True or False (etcd3gw does not wait)
  release            release the lock last acquired: True or False
  held               is_acquired() of that lock: True or False
A closed stdin ends it without releasing anything: the lease then expires.
"""
import sys

from etcd3gw.client import Etcd3Client


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    # Debian's etcd3gw 2.0's client() takes no api_path; its class does, and
    # its default (/v3alpha/) is gone from etcd 3.5 on.
    client = Etcd3Client(host=host, port=port, api_path="/v3/")
    lock = None
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "acquire":
            lock = client.lock(id=words[1], ttl=int(words[2]))
            print(lock.acquire(), flush=True)
        elif words[0] == "release":
            print(lock.release(), flush=True)
        elif words[0] == "held":
            print(lock.is_acquired(), flush=True)
        else:
            print("unknown command " + words[0], flush=True)


if __name__ == "__main__":
    main()
