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
import struct

HZ = 1000
AMPLITUDE = 0.33  # of full scale
FIRST_SEQ = 2000
PACKETS = 200
SSRC = 0x70DE1000
PCMA_PT = 8
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


def ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def packet(n: int) -> bytes:
    samples = (round(AMPLITUDE * 32767 * math.sin(2 * math.pi * HZ * (n * 160 + i) / 8000))
               for i in range(160))
    payload = bytes(alaw(s) for s in samples)
    marker = 0x80 if n == 0 else 0
    rtp = struct.pack("!BBHII", 0x80, marker | PCMA_PT, FIRST_SEQ + n, n * 160, SSRC) + payload
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
            usec = n * 20_000
            data = packet(n)
            out.write(struct.pack("<IIII", START + usec // 1_000_000, usec % 1_000_000,
                                  len(data), len(data)))
            out.write(data)


if __name__ == "__main__":
    main()
