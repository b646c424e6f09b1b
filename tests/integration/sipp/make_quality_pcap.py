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
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtp_pcap import PCMA_PT, rtp_frame, write_pcap  # noqa: E402

FIRST_SEQ = 1000
PACKETS = 150
DROPPED = {1020, 1021, 1022, 1035, 1050, 1065, 1080, 1095, 1110, 1125}
SSRC = 0x5EED0721
START = 1_800_000_000  # capture time of the first packet, seconds
OUT = "tests/integration/sipp/quality_gaps.pcap"


def packet(n: int) -> bytes:
    # A-law "silence" with a little ripple: any payload will do.
    payload = bytes(0xD5 ^ (i & 0x03) for i in range(160))
    return rtp_frame(n, FIRST_SEQ + n, n * 160, SSRC, payload, PCMA_PT)


def main() -> None:
    write_pcap(OUT, START, ((n * 20_000 + (10_000 if n % 2 else 0), packet(n))
                            for n in range(PACKETS) if FIRST_SEQ + n not in DROPPED))


if __name__ == "__main__":
    main()
