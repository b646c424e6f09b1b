#!/usr/bin/env python3
"""Writes tone_1000hz.pcap: the RTP stream of uas_early_media_tone.xml.

200 PCMA packets of 20 ms (4 s; sequence numbers 2000..2199, timestamps
+160 each, one SSRC, the first with the marker bit), each carrying the next
160 samples of one continuous 1000 Hz sine at a third of full scale. A
LISTEN call audio stream (or a recording) then hears one clean frequency,
which tests find with ToneShare, unlike speech.

Run from the repository's root: python3 tests/integration/sipp/make_tone_pcap.py
"""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtp_pcap import PCMA_PT, rtp_frame, write_pcap  # noqa: E402

HZ = 1000
AMPLITUDE = 0.33  # of full scale
FIRST_SEQ = 2000
PACKETS = 200
SSRC = 0x70DE1000
START = 1_800_000_000  # capture time of the first packet, seconds
OUT = "tests/integration/sipp/tone_1000hz.pcap"


def alaw(sample: int) -> int:
    """G.711 A-law of a 16-bit linear sample (ITU-T G.711, as sox/g711.c)."""
    mask = 0xD5 if sample >= 0 else 0x55
    if sample < 0:
        sample = -sample - 1
    sample >>= 3  # 13 bits
    segment = 0
    for end in (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF):
        if sample <= end:
            break
        segment += 1
    if segment >= 8:
        return 0x7F ^ mask
    value = segment << 4
    value |= (sample >> 1) & 0x0F if segment < 2 else (sample >> segment) & 0x0F
    return value ^ mask


def packet(n: int) -> bytes:
    samples = (round(AMPLITUDE * 32767 * math.sin(2 * math.pi * HZ * (n * 160 + i) / 8000))
               for i in range(160))
    payload = bytes(alaw(s) for s in samples)
    return rtp_frame(n, FIRST_SEQ + n, n * 160, SSRC, payload, PCMA_PT, marker=(n == 0))


def main() -> None:
    write_pcap(OUT, START, ((n * 20_000, packet(n)) for n in range(PACKETS)))


if __name__ == "__main__":
    main()
