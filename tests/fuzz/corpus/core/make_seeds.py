#!/usr/bin/env python3
"""Writes fuzz_core's seed inputs (the encoding is fuzz_core.cpp's: an operation byte, then one
byte per argument). Run from this folder after changing the encoding."""

OPEN, CLOSE, ATTACH, DETACH, TRANSFER, CONSUMER_DISPOSITION, PRODUCER_SETTLES, CREDIT = range(8)
ADVANCE_CLOCK, WILL = 16, 17
WILL_HOLD, WILL_ARM, WILL_CANCEL, WILL_RECONNECTED, WILL_FIRE_NOW = range(5)
RECEIVER, SENDER = 1, 0            # attach kind: an ordinary receiver / sender
MULTICAST_C, BALANCED_B = 2, 1     # indexes into kAddresses
UNSETTLED = 0                      # transfer flags
ACCEPTED = 0                       # outcome index


def open_connection():
    return [OPEN, 3, 1]            # capacity 4, not a route container


seeds = {
    # The README's first example: receiver and sender on one connection, an unsettled message the
    # receiver never settles, then the connection closes (trestled died here with SIGSEGV).
    "readme_multicast_one_connection": open_connection() + [
        ATTACH, 0, RECEIVER, MULTICAST_C,
        ATTACH, 0, SENDER, MULTICAST_C,
        CREDIT, 0, 6, 1,
        TRANSFER, 0, UNSETTLED, 0,
        CLOSE, 0],
    # The same on two connections, the sender's closing first.
    "readme_multicast_two_connections": open_connection() + open_connection() + [
        ATTACH, 0, RECEIVER, MULTICAST_C,
        ATTACH, 1, SENDER, MULTICAST_C,
        CREDIT, 0, 6, 1,
        TRANSFER, 0, UNSETTLED, 0,
        CLOSE, 1, CLOSE, 0],
    # Balanced: receiver A never settles, receiver B accepts, messages one at a time, both close.
    "balanced_one_receiver_never_settles": open_connection() + open_connection() + [
        ATTACH, 0, RECEIVER, BALANCED_B,
        ATTACH, 1, RECEIVER, BALANCED_B,
        ATTACH, 1, SENDER, BALANCED_B,
        CREDIT, 0, 7, 1,
        CREDIT, 1, 7, 1] + [
        TRANSFER, 0, UNSETTLED, 0,
        CONSUMER_DISPOSITION, 1, 0, ACCEPTED, 1] * 6 + [
        CLOSE, 0, CLOSE, 0],
    # Wills: held, armed with a delay, the clock passes it; another armed, then its session ends.
    "wills_delay_and_session_end": open_connection() + [
        ATTACH, 0, RECEIVER, MULTICAST_C,
        CREDIT, 0, 6, 1,
        WILL, 0, MULTICAST_C, 1, WILL_HOLD,
        WILL, 0, MULTICAST_C, 1, WILL_ARM, 2,
        ADVANCE_CLOCK, 3,
        WILL, 1, MULTICAST_C, 0, WILL_ARM, 3,
        WILL, 1, MULTICAST_C, 0, WILL_FIRE_NOW,
        CLOSE, 0],
}

for name, ops in seeds.items():
    with open(name, "wb") as f:
        f.write(bytes(ops))
