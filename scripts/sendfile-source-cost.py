#!/usr/bin/env python3
"""sendfile-source-cost.py: CPU of sending 1 MiB with sendfile(2) over loopback TCP, from a memfd
(where the RAM tier keeps large bodies) against a regular file in the page cache (where nginx's
proxy_cache keeps them). Prints one name=value line per source: the sender's CPU (user + system)
per MiB sent, averaged over N sends, alternated ROUNDS times.

Why: on 1 MiB hits edge-cdn spent more CPU per response than nginx although both send with
sendfile under TCP_CORK. Usage: python3 scripts/sendfile-source-cost.py [N] [ROUNDS] [DIR]
(DIR: where the regular file goes, default /tmp, i.e. the file system nginx's cache would use).

A third source, memfd_huge, is a memfd written through a mapping advised MADV_HUGEPAGE: it gets a
2 MiB huge page only where /sys/kernel/mm/transparent_hugepage/shmem_enabled allows it (advise,
within_size, always); the script prints whether it did (sendfile.memfd_huge.huge_page=yes|no).
"""
import mmap
import os
import resource
import socket
import sys

SIZE = 1 << 20
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 2
DIRECTORY = sys.argv[3] if len(sys.argv) > 3 else "/tmp"
DATA = os.urandom(SIZE)


def shmem_huge_kib():
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("ShmemHugePages:"):
                return int(line.split()[1])
    return 0


HUGE_PAGE = {"got": False}


def source(kind):
    if kind == "memfd":
        fd = os.memfd_create("edge-cdn-sendfile-source")
        os.write(fd, DATA)
        return fd, None
    if kind == "memfd_huge":
        fd = os.memfd_create("edge-cdn-sendfile-source-huge")
        os.ftruncate(fd, 2 << 20)  # a whole huge page, which the kernel allocates only when it fits
        before = shmem_huge_kib()
        mapping = mmap.mmap(fd, 2 << 20)
        mapping.madvise(mmap.MADV_HUGEPAGE)
        mapping[:SIZE] = DATA
        mapping.close()
        HUGE_PAGE["got"] = HUGE_PAGE["got"] or shmem_huge_kib() > before
        return fd, None
    path = os.path.join(DIRECTORY, f"edge-cdn-sendfile-source-{os.getpid()}")
    with open(path, "wb") as f:
        f.write(DATA)
    fd = os.open(path, os.O_RDONLY)
    os.read(fd, SIZE)  # in the page cache, as a cached object's file would be
    return fd, path


def cpu_per_mib(kind):
    fd, path = source(kind)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    reader = os.fork()
    if reader == 0:  # the client: reads and drops everything
        client = socket.create_connection(("127.0.0.1", port))
        buffer = memoryview(bytearray(SIZE))
        total = 0
        while total < SIZE * N:
            n = client.recv_into(buffer)
            if n == 0:
                break
            total += n
        os._exit(0)
    connection, _ = listener.accept()
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(N):
        offset = 0
        while offset < SIZE:
            offset += os.sendfile(connection.fileno(), fd, offset, SIZE - offset)
    after = resource.getrusage(resource.RUSAGE_SELF)
    os.waitpid(reader, 0)
    connection.close()
    listener.close()
    os.close(fd)
    if path:
        os.unlink(path)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used / N * 1e6


results = {"memfd": [], "file": [], "memfd_huge": []}
for _ in range(ROUNDS):
    for kind in ("memfd", "file", "memfd_huge"):
        results[kind].append(cpu_per_mib(kind))
for kind, values in results.items():
    print(f"sendfile.{kind}.cpu_us_per_mib=" + "/".join(f"{v:.0f}" for v in values))
print(f"sendfile.memfd_huge.huge_page={'yes' if HUGE_PAGE['got'] else 'no'}")
with open("/sys/kernel/mm/transparent_hugepage/shmem_enabled") as setting:
    print("sendfile.shmem_enabled=" + setting.read().split("[")[1].split("]")[0])
print(f"sendfile.kernel={os.uname().release}")
