#!/usr/bin/env python3
"""Writes quality_gaps.pcap: the RTP stream of uas_quality_gaps.xml.

150 PCMA packets of 20 ms (3 s; sequence numbers 1000..1149, timestamps
+160 each, one SSRC), from which 10 are left out: a burst of 3 (1020..1022)
and 7 single ones. Every odd packet is sent 10 ms late (its capture time is
20 ms x n + 10 ms), so each arrival is 10 ms off the one before: the RFC
3550 jitter converges to 10 ms (80 timestamp units). sipp replays the file
with its timing and its RTP headers unchanged (only the addresses and
ports are rewritten), so the gateway must count 140 packets received,
10 lost (expected 150) and a jitter near 10 ms.

Run from the repository's root: python3 tests/integration/sipp/make_quality_pcap.py
"""
import struct

FIRST_SEQ = 1000
PACKETS = 150
DROPPED = {1020, 1021, 1022, 1035, 1050, 1065, 1080, 1095, 1110, 1125}
SSRC = 0x5EED0721
PCMA_PT = 8
START = 1_800_000_000  # capture time of the first packet, seconds
OUT = "tests/integration/sipp/quality_gaps.pcap"


def ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def packet(n: int) -> bytes:
    seq = FIRST_SEQ + n
    # A-law "silence" with a little ripple: any payload will do.
    payload = bytes(0xD5 ^ (i & 0x03) for i in range(160))
    rtp = struct.pack("!BBHII", 0x80, PCMA_PT, seq & 0xFFFF, n * 160, SSRC) + payload
    udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp  # checksum 0: none
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + len(udp), n & 0xFFFF, 0x4000, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    ethernet = bytes.fromhex("020000000002" "020000000001" "0800")
    return ethernet + ip + udp


def main() -> None:
    with open(OUT, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
        for n in range(PACKETS):
            if FIRST_SEQ + n in DROPPED:
                continue
            usec = n * 20_000 + (10_000 if n % 2 else 0)
            data = packet(n)
            out.write(struct.pack("<IIII", START + usec // 1_000_000, usec % 1_000_000,
                                  len(data), len(data)))
            out.write(data)


if __name__ == "__main__":
    main()
